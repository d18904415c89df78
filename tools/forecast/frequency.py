"""From a raw table to a regular panel: parse the time column, split series, infer the frequency,
and report (then handle or refuse) what breaks a regular grid.

Handled: missing timestamps on an otherwise regular grid (gaps) are filled by linear interpolation
within the series, and counted. Refused, each with a one-line reason: unparseable or missing
timestamps, duplicated (series, timestamp) pairs (summing or averaging them is the user's call),
timestamps that fit no regular frequency, a missing target in more than a fifth of a series.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.registry import ToolError
from dsagent.tools.timestamps import wall_times

# Seasonal period by the first letters of a pandas offset's rule code (pandas 3: ME, QS-OCT, W-SUN, h).
PERIODS = (("QS", 4), ("QE", 4), ("Q", 4), ("MS", 12), ("ME", 12), ("M", 12), ("W", 52), ("BH", 8), ("B", 5),
           ("D", 7), ("h", 24), ("H", 24), ("min", 60), ("YS", 1), ("YE", 1), ("Y", 1), ("A", 1), ("s", 60))
SEP = " | "  # joins the values of several series columns into one series id
PREFIX = "cov:"  # panel frame columns that hold a covariate (tools/forecast/covariates.py): never clash with series/time/y


class ForecastDataError(ToolError):
    """Bad forecasting input: one line, what is wrong and what to do."""


@dataclass
class Panel:
    """A long frame with columns series (str), time (datetime64), y (float), sorted, one regular grid
    per series; plus what was found on the way."""

    frame: pd.DataFrame
    freq: str
    period: int
    series_values: dict[str, dict[str, Any]] = field(default_factory=dict)  # series id -> {column: value}
    covariates: Any = None  # covariates.Covariates when the frame carries covariate columns (PREFIX + name)
    gaps_filled: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(np.sort(self.frame["time"].unique()))


def seasonal_period(freq: str) -> int:
    code = pd.tseries.frequencies.to_offset(freq).rule_code
    for prefix, m in PERIODS:
        if code.startswith(prefix):
            return m
    return 1


def _infer_one(times: pd.DatetimeIndex) -> str | None:
    if len(times) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns that infer_freq will return an offset
        found = pd.infer_freq(times)
    return found.freqstr if hasattr(found, "freqstr") else found


def _calendar_grid(times: pd.DatetimeIndex) -> str | None:
    """Yearly, quarterly or monthly (anchored on the first timestamp), coarsest first, that contains
    every timestamp and is at least two-thirds filled (so quarterly data is never read as monthly)."""
    month = times[0].strftime("%b").upper()
    for f in (f"YS-{month}", f"YE-{month}", f"QS-{month}", f"QE-{month}", "MS", "ME"):
        try:
            grid = pd.date_range(times[0], times[-1], freq=f)
        except ValueError:
            continue
        if len(grid) and times.isin(grid).all() and len(times) >= 2 * len(grid) / 3:
            return pd.tseries.frequencies.to_offset(f).freqstr
    return None


def infer_frequency(per_series: dict[str, pd.DatetimeIndex]) -> str:
    """The frequency most series agree on; a series with gaps is read off the most common step."""
    votes: dict[str, int] = {}
    for times in per_series.values():
        freq = _infer_one(times)
        if freq is None and len(times) >= 3:  # gaps: try the grid of the most common step
            step = pd.Series(np.diff(times.asi8)).mode().iloc[0]
            full = pd.date_range(times[0], times[-1], freq=pd.Timedelta(step))
            freq = _infer_one(full) if full.isin(times).sum() == len(times) else None
            if freq is None:  # a calendar step (months, quarters) varies in days: the coarsest grid that holds them all
                freq = _calendar_grid(pd.DatetimeIndex(times))
        if freq:
            votes[freq] = votes.get(freq, 0) + len(times)
    if not votes:
        raise ForecastDataError("the timestamps fit no regular frequency (daily, weekly, monthly, ...); resample the data "
                                "to a regular grid first, or pass `frequency:` (a pandas alias such as D, W, MS) in the answers")
    return max(votes, key=votes.get)


def series_ids(df: pd.DataFrame, series_columns: list[str]) -> pd.Series:
    """Each row's series id: its series columns' values joined by SEP ("all" for a single series)."""
    if series_columns:
        return df[series_columns].astype(str).agg(SEP.join, axis=1)
    return pd.Series("all", index=df.index)


def build_panel(df: pd.DataFrame, time_column: str, target: str, series_columns: list[str] | None = None,
                frequency: str | None = None, extra: list[str] | None = None, require_target: bool = True) -> Panel:
    """The regular panel of `df`, whatever the row order of the file (it is sorted here). `extra` columns
    ride along as PREFIX + name (not interpolated); `require_target=False` reads rows whose target is
    still unknown (the future rows that carry known-future covariates)."""
    series_columns = list(series_columns or [])
    for col in [time_column, target, *series_columns]:
        if col not in df.columns:
            raise ForecastDataError(f"column {col!r} is not in the data; the columns are {', '.join(map(str, df.columns[:12]))}")
    times, in_utc = wall_times(df[time_column])
    bad = int(times.isna().sum())
    if bad:
        example = df.loc[times.isna(), time_column].astype(str).head(2).tolist()
        raise ForecastDataError(f"{bad} value(s) of time column {time_column!r} are missing or not dates (e.g. {example}); "
                                "fix or drop those rows")
    y = pd.to_numeric(df[target], errors="coerce")
    sid = series_ids(df, series_columns)
    frame = pd.DataFrame({"series": sid.to_numpy(), "time": times.to_numpy(), "y": y.to_numpy(dtype=float)})
    extra_cols = [PREFIX + c for c in extra or []]
    for c in extra or []:
        frame[PREFIX + c] = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
    dup = frame.duplicated(["series", "time"], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        where = f" of series {first['series']!r}" if series_columns else ""
        raise ForecastDataError(
            f"{int(dup.sum())} rows share a timestamp with another row of the same series (e.g. {first['time']}{where}); "
            "aggregate them (sum or mean) or add the column that tells them apart to series_columns")
    frame = frame.sort_values(["series", "time"], kind="mergesort").reset_index(drop=True)
    per_series = {s: pd.DatetimeIndex(g["time"]) for s, g in frame.groupby("series", sort=True)}
    if frequency:
        try:
            freq = pd.tseries.frequencies.to_offset(frequency).freqstr
        except ValueError:
            raise ForecastDataError(f"frequency {frequency!r} is not a pandas frequency alias; use one such as D, W, MS, QS, h") from None
    else:
        freq = infer_frequency(per_series)
    parts, filled, notes = [], 0, []
    if in_utc:
        notes.append(f"the UTC offsets of {time_column!r} change within the data (daylight saving): its times are read, "
                     "and the forecasts given, in UTC")
    for s, g in frame.groupby("series", sort=True):
        grid = pd.date_range(g["time"].iloc[0], g["time"].iloc[-1], freq=freq)
        off = ~pd.DatetimeIndex(g["time"]).isin(grid)
        if off.any():
            raise ForecastDataError(f"series {s!r} has {int(off.sum())} timestamp(s) off the {freq} grid (e.g. "
                                    f"{g['time'][off].iloc[0]}); resample it to one frequency or pass `frequency:` in the answers")
        full = g.set_index("time").reindex(grid)
        full.index.name = "time"
        missing = int(full["y"].isna().sum())
        if require_target and missing > 0.2 * len(full):
            raise ForecastDataError(f"series {s!r} lacks the target at {missing} of {len(full)} time steps (gaps or empty "
                                    "values); fill them, or drop the series")
        filled += missing
        if require_target:
            full["y"] = full["y"].interpolate(limit_direction="both")
        full["series"] = s
        parts.append(full.reset_index())
    out = pd.concat(parts, ignore_index=True)[["series", "time", "y", *extra_cols]]
    if filled and require_target:
        notes.append(f"{filled} missing time step(s) or empty target value(s) filled by linear interpolation within their series")
    values = {}
    if series_columns:
        firsts = df.assign(_sid=sid.to_numpy()).drop_duplicates("_sid")
        values = {r["_sid"]: {c: (r[c].item() if hasattr(r[c], "item") else r[c]) for c in series_columns}
                  for _, r in firsts.iterrows()}
    return Panel(frame=out, freq=freq, period=seasonal_period(freq), series_values=values, gaps_filled=filled, notes=notes)
