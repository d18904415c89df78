"""Leak-free features for the global gradient-boosted model, built only from the past.

Direct multi-step with the step as a feature: one row per (origin t, step k), features read the
series up to and including t, the target is y[t+k]. Chosen over recursive forecasting because
errors do not compound over the horizon, one model serves every step, and "built only from the
past" is true by construction (every feature indexes y[<= t]); the calendar of the target time is
the only thing read at t+k, and the calendar is known in advance.

Values are divided by the series' recent level (mean |y| of the last season up to t), so one model
learns shapes across series of very different sizes, and a trend moves the level rather than
leaving the range the trees saw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsagent.tools.forecast.covariates import Covariates
from dsagent.tools.forecast.covariates import features as cov_features

MAX_ROWS = 150_000  # training rows kept (the most recent origins): bounds the fit on long panels


def n_lags(period: int) -> int:
    return int(min(max(2 * period, 8), 60))


def _level(y: np.ndarray, t: np.ndarray, w: int) -> np.ndarray:
    """Mean |y| over y[t-w+1 .. t] (fewer points at the start), 1 where that is 0."""
    csum = np.concatenate([[0.0], np.cumsum(np.abs(y))])
    lo = np.maximum(t - w + 1, 0)
    level = (csum[t + 1] - csum[lo]) / (t + 1 - lo)
    return np.where(level > 0, level, 1.0)


def calendar(times: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    return {"month": times.month.to_numpy(), "quarter": times.quarter.to_numpy(), "week": times.isocalendar().week.to_numpy(dtype=int),
            "dayofweek": times.day_of_week.to_numpy(), "day": times.day.to_numpy(), "hour": times.hour.to_numpy()}


def series_rows(y: np.ndarray, times: pd.DatetimeIndex, origins: np.ndarray, horizon: int, period: int,
                cov: dict[str, np.ndarray] | None = None, cov_spec: Covariates | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Feature rows for every origin in `origins` and step 1..horizon; returns (X, level per row).
    `times` must cover every target time (origin + step): the grid extended by the horizon; so must
    `cov` (covariate arrays on that grid: known-future ones are read at t+k, past-only ones up to t)."""
    L, m = n_lags(period), max(period, 1)
    t = np.asarray(origins, dtype=int)
    level = _level(y, t, max(m, 4))
    padded = np.concatenate([np.full(L, np.nan), y])
    lags = np.lib.stride_tricks.sliding_window_view(padded, L)[t + 1][:, ::-1]  # y[t], y[t-1], ..., y[t-L+1]
    scaled = lags / level[:, None]
    base: dict[str, np.ndarray] = {f"lag{i}": scaled[:, i] for i in range(L)}
    with np.errstate(all="ignore"), _quiet():
        base["mean3"] = np.nanmean(scaled[:, :3], axis=1)
        base["mean_season"] = np.nanmean(scaled[:, :m], axis=1) if m > 1 else scaled[:, 0]
        base["std_season"] = np.nanstd(scaled[:, : max(m, 4)], axis=1)
    base["log_level"] = np.log1p(level)
    blocks, levels = [], []
    cal = calendar(times)
    for k in range(1, horizon + 1):
        block = dict(base)
        block["step"] = np.full(len(t), k)
        back = t + k - m * int(np.ceil(k / m)) if m > 1 else t
        block["seasonal"] = np.where(back >= 0, y[np.maximum(back, 0)], np.nan) / level
        for name, values in cal.items():
            block[name] = values[t + k]
        if cov_spec:
            block.update(cov_features(cov, cov_spec, t, k))
        blocks.append(pd.DataFrame(block))
        levels.append(level)
    return pd.concat(blocks, ignore_index=True), np.concatenate(levels)


class _quiet:
    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices at the start of a series

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


def training_rows(series: dict[str, np.ndarray], grids: dict[str, pd.DatetimeIndex], horizon: int, period: int,
                  covs: dict[str, dict[str, np.ndarray]] | None = None, cov_spec: Covariates | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """(X, target / level) from every origin whose targets are all observed: nothing past the end
    of each series is read, so a series cut at a backtest origin yields exactly its past."""
    Xs, ys, ages = [], [], []
    for s, y in series.items():
        n = len(y)
        origins = np.arange(1, n - 1)
        if len(origins) == 0:
            continue
        X, level = series_rows(y, grids[s], origins, horizon, period, (covs or {}).get(s), cov_spec)
        step = X["step"].to_numpy()
        target_idx = np.tile(origins, horizon) + step
        keep = target_idx < n
        Xs.append(X[keep])
        ys.append(y[target_idx[keep]] / level[keep])
        ages.append((n - np.tile(origins, horizon))[keep])
    if not Xs:
        return pd.DataFrame(), np.array([])
    X = pd.concat(Xs, ignore_index=True)
    target = np.concatenate(ys)
    if len(X) > MAX_ROWS:  # keep the latest origins of every series: they look most like the future
        keep = np.sort(np.argsort(np.concatenate(ages), kind="stable")[:MAX_ROWS])
        X, target = X.iloc[keep].reset_index(drop=True), target[keep]
    return X, target
