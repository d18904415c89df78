"""statsforecast's AutoETS, AutoARIMA and AutoTheta on the benchmark's collections (the peers of issue 17),
each fit on all but the last horizon of every series, with its 95% interval; wall time per model and
collection. Runs in its own venv (statsforecast pins pandas < 3):
    benchmarks/work/venv-statsforecast/bin/python benchmarks/forecast/run_statsforecast.py DATA_DIR OUT.json [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from scoring import score, split  # noqa: E402


def run_one(name: str, meta: dict, data_dir: Path) -> dict:
    from statsforecast import StatsForecast
    from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

    df = pd.read_csv(data_dir / f"{name}.csv", parse_dates=["time"])
    h, m = meta["horizon"], meta["season_length"]
    train, test = split(df, h)
    sf_train = train.rename(columns={"series": "unique_id", "time": "ds"})[["unique_id", "ds", "y"]]
    freq = meta["freq"]
    row: dict = {"dataset": name}
    for model in (AutoETS(season_length=m), AutoARIMA(season_length=m), AutoTheta(season_length=m)):
        label = type(model).__name__
        started = time.perf_counter()
        try:
            fc = StatsForecast(models=[model], freq=freq, n_jobs=1).forecast(df=sf_train, h=h, level=[95])
        except Exception as exc:  # noqa: BLE001 - reported per model, the others still run
            row[label] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            continue
        wall = time.perf_counter() - started
        fc = fc.reset_index() if "unique_id" not in fc.columns else fc
        fc = fc.rename(columns={"unique_id": "series", "ds": "time", label: "yhat", f"{label}-lo-95": "lower_95",
                                f"{label}-hi-95": "upper_95"})
        fc["series"] = fc["series"].astype(str)
        scored = test.assign(series=test["series"].astype(str)).merge(fc, on=["series", "time"], how="left")
        if scored["yhat"].isna().any():  # a grid mismatch would silently score nothing: say so
            row[label] = {"error": f"{int(scored['yhat'].isna().sum())} held-out points without a forecast"}
            continue
        row[label] = score(train, scored, m) | {"wall_s": round(wall, 1)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    meta = json.loads((args.data_dir / "datasets.json").read_text())
    rows = []
    for name in args.only or list(meta):
        row = run_one(name, meta[name], args.data_dir)
        print(json.dumps(row), flush=True)
        rows.append(row)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
