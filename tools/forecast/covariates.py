"""Covariates of the global model: known-future columns versus past-only columns.

- Known-future (the answers' `known_future_columns`: price, promotions, holidays, a temperature
  forecast): their values at the target time are given when the forecast is made, so they enter
  the model as same-time features (the value at t+k for step k). `dsagent predict` requires them
  for every step of the horizon.
- Past-only (every other numeric column that is not the target, the time or a series column): their
  future is unknown when forecasting, so they enter only through their lags (the values at the origin
  t and at t-1), never at t+k: reading them at the target time would be a leak.
Non-numeric other columns are left out (said in the task's notes). The statistical per-series models
and the baselines use the target alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.forecast.frequency import PREFIX, ForecastDataError
PAST_LAGS = 2  # past-only columns at t and t-1
MAX_PAST = 10  # past-only columns kept (the first ones in the file): each adds PAST_LAGS features


@dataclass
class Covariates:
    """Which covariates a panel carries, by their original column names."""

    known: list[str] = field(default_factory=list)
    past: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [*self.known, *self.past]

    def __bool__(self) -> bool:
        return bool(self.known or self.past)

    def arrays(self, frame: pd.DataFrame, series: str, grid: pd.DatetimeIndex) -> dict[str, np.ndarray]:
        """Each covariate of one series on `grid` (NaN where the frame has no value)."""
        g = frame[frame["series"] == series].set_index("time")
        return {c: pd.to_numeric(g[PREFIX + c], errors="coerce").reindex(grid).to_numpy(dtype=float) for c in self.columns}

    def to_dict(self) -> dict[str, Any]:
        return {"known": self.known, "past": self.past}


def choose(df: pd.DataFrame, target: str, time_column: str, series_columns: list[str],
           known: list[str] | None) -> tuple[Covariates, list[str]]:
    """(the covariates, notes): the known-future columns as given (each must be numeric), every other
    numeric column as past-only."""
    known = list(known or [])
    taken = {target, time_column, *series_columns}
    for c in known:
        if c not in df.columns:
            raise ForecastDataError(f"known_future_columns names {c!r}, which is not in the data; the columns are "
                                    f"{', '.join(map(str, df.columns[:12]))}")
        if c in taken:
            raise ForecastDataError(f"{c!r} is the target, the time column or a series column; it cannot be a known-future covariate")
        if not pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]):
            raise ForecastDataError(f"known-future column {c!r} is not numeric; encode it as numbers (e.g. 0/1 for a holiday flag)")
    others = [c for c in df.columns if c not in taken and c not in known]
    past = [c for c in others if pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
    notes = []
    if len(past) > MAX_PAST:
        notes.append(f"{len(past)} past-only numeric columns: the first {MAX_PAST} are used through their lags")
        past = past[:MAX_PAST]
    if past:
        notes.append(f"past-only columns (used only through their values up to the forecast origin): {', '.join(past)}")
    skipped = [c for c in others if c not in past and c not in known][:5]
    if skipped:
        notes.append(f"non-numeric columns left out of the forecast: {', '.join(map(str, skipped))}")
    return Covariates(known=known, past=past), notes


def features(cov: dict[str, np.ndarray], spec: Covariates, t: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The covariate features of the rows at origins `t`, step k: known-future at t+k, past-only at t, t-1."""
    out: dict[str, np.ndarray] = {}
    for c in spec.known:
        out[f"future_{c}"] = cov[c][t + k]
    for c in spec.past:
        for j in range(PAST_LAGS):
            out[f"past_{c}_lag{j}"] = np.where(t - j >= 0, cov[c][np.maximum(t - j, 0)], np.nan)
    return out


def require_future(spec: Covariates, frame: pd.DataFrame, series: str, future: pd.DatetimeIndex) -> None:
    """Predict needs every known-future value for every step of the horizon: a one-line refusal otherwise."""
    if not spec.known:
        return
    g = frame[frame["series"] == series].set_index("time")
    for c in spec.known:
        values = pd.to_numeric(g[PREFIX + c], errors="coerce").reindex(future) if PREFIX + c in g else pd.Series(np.nan, index=future)
        if values.isna().any():
            when = values.index[values.isna()][0]
            label = "" if series == "all" else f" of series {series!r}"
            raise ForecastDataError(
                f"known-future column {c!r} has no value at {when.date()}{label}: the forecast needs it for each of the "
                f"{len(future)} steps after the history; add rows for those timestamps with {c!r} filled and the target empty")
