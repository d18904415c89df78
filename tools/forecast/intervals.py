"""Prediction intervals (80% and 95%) from backtest residuals, calibrated per horizon step.

Each backtest error is divided by its series' interval scale at the origin (`scales`: the mean
absolute seasonal difference of the recent past, so a series whose swings grow with its level, or calm
down, gets intervals that follow) and by the step's error profile g(k) (the mean scaled error at step
k, pooled with neighbouring steps until it rests on MIN_POINTS errors, then made non-decreasing in k:
uncertainty does not shrink with the horizon). The ratios of all steps are then pooled, so the quantile
rests on every backtest error rather than on the few of one step, and the interval at step k is the
forecast +- quantile x g(k) x the series' scale.

The quantile is the plain empirical one (interpolated), not the conservative split-conformal rank
ceil((n+1)p)/n: with the 24-90 errors a few backtest windows give, that rank is the largest error and
the 95% interval covered every held-out point (too wide, the benchmark of 2026-12-02: 6 of 13
collections at 100%); the plain quantile aims at the stated level. It is floored at the Gaussian
value (GAUSSIAN: the level's quantile of |e| / mean |e| for normal errors): the errors of one window
move together, so 3-5 windows are few independent draws, and their empirical tail quantile falls short
more often than not. Measured on the last backtest window of 12 benchmark collections (quantiles from
the windows before it, the blend of the best as the model): 80% intervals covered 0.77 of 342 points
without the floor, 0.81 with it; 95% intervals 0.895 and 0.91. Coverage is checked honestly:
leave-one-window-out on the backtests, and on the untouched test window, with the probability of so
few hits under the stated level (`consistency`: 8 or 18 held-out points cannot show 90-98% coverage
reliably, 8 not at all).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

LEVELS = (80, 95)
MIN_POINTS = 20
GAUSSIAN = {80: 1.2816 * np.sqrt(np.pi / 2), 95: 1.9600 * np.sqrt(np.pi / 2)}  # z_(1+p)/2 / E|Z|


def scales(history: dict[str, Any], period: int) -> dict[str, float]:
    """Per series: the mean absolute seasonal difference over the last max(a season, 12) steps (lag 1
    when the series has fewer than six seasonal differences); the level, then 1, when that is zero.
    Mixing lags across backtest origins mixes two units in one quantile, so the seasonal lag is used
    as early as it can be."""
    out = {}
    for s, (_, y) in history.items():
        y = np.asarray(y, dtype=float)
        m = period if period > 1 and len(y) >= period + 6 else 1  # the same lag at every origin where possible
        d = np.abs(y[m:] - y[:-m])[-max(m, 12):] if len(y) > m else np.array([])
        value = float(np.mean(d)) if len(d) else 0.0
        if not value > 0:
            value = float(np.mean(np.abs(y))) if len(y) and np.mean(np.abs(y)) > 0 else 1.0
        out[s] = value
    return out


def _scaled_errors(rows: pd.DataFrame) -> np.ndarray:
    scale = rows["iscale"] if "iscale" in rows else rows["scale"]
    return (rows["y"] - rows["yhat"]).abs().to_numpy() / scale.to_numpy()


def profile(err: np.ndarray, step: np.ndarray, horizon: int) -> np.ndarray:
    """g(1..h): the mean scaled error per step (pooled with neighbours up to MIN_POINTS), non-decreasing."""
    g = []
    for k in range(1, horizon + 1):
        r = 0
        while True:
            near = err[np.abs(step - k) <= r]
            if len(near) >= MIN_POINTS or r >= horizon:
                break
            r += 1
        g.append(float(np.mean(near)) if len(near) else np.nan)
    g = np.maximum.accumulate(np.nan_to_num(np.asarray(g), nan=0.0))
    return np.where(g > 0, g, max(float(g.max()), 1e-12))


def quantiles(rows: pd.DataFrame, horizon: int) -> dict[str, list[float]]:
    """{"80": [q_1 .. q_h], "95": [...]} in units of the series' interval scale."""
    out: dict[str, list[float]] = {str(lv): [] for lv in LEVELS}
    if rows.empty:
        return {k: [float("nan")] * horizon for k in out}
    err, step = _scaled_errors(rows), rows["step"].to_numpy()
    g = profile(err, step, horizon)
    ratio = err / g[np.clip(step, 1, horizon) - 1]
    for lv in LEVELS:
        q = max(float(np.quantile(ratio, lv / 100)), GAUSSIAN[lv])
        out[str(lv)] = [float(q * gk) for gk in g]
    return out


def apply(pred: pd.DataFrame, q: dict[str, list[float]], scales: dict[str, float]) -> pd.DataFrame:
    """pred (series, step, yhat) with lower_/upper_ columns for each level."""
    out = pred.copy()
    scale = out["series"].map(scales).astype(float).to_numpy()
    idx = out["step"].to_numpy(dtype=int) - 1
    for lv in LEVELS:
        width = np.asarray(q[str(lv)])[idx] * scale
        out[f"lower_{lv}"] = out["yhat"] - width
        out[f"upper_{lv}"] = out["yhat"] + width
    return out


def coverage(rows: pd.DataFrame) -> dict[str, float | None]:
    """Share of actuals inside each interval (rows with y and the lower_/upper_ columns)."""
    if rows.empty:
        return {str(lv): None for lv in LEVELS}
    return {str(lv): float(((rows["y"] >= rows[f"lower_{lv}"]) & (rows["y"] <= rows[f"upper_{lv}"])).mean()) for lv in LEVELS}


def consistency(rows: pd.DataFrame) -> dict[str, Any]:
    """Whether the hits on few held-out points are what an interval at its stated level would give:
    per level the points, the hits and the two-sided binomial p-value (the points of one window are not
    independent, so a low p-value is a hint, not proof)."""
    from scipy.stats import binomtest

    out: dict[str, Any] = {"n": int(len(rows))}
    for lv in LEVELS:
        if rows.empty:
            out[str(lv)] = None
            continue
        hits = int(((rows["y"] >= rows[f"lower_{lv}"]) & (rows["y"] <= rows[f"upper_{lv}"])).sum())
        out[str(lv)] = {"hits": hits, "p_value": float(binomtest(hits, len(rows), lv / 100).pvalue)}
    return out


def backtest_coverage(rows: pd.DataFrame, horizon: int) -> dict[str, float | None]:
    """Leave-one-window-out: each window's points against quantiles from the other windows."""
    parts = []
    for w in sorted(rows["window"].unique()):
        q = quantiles(rows[rows["window"] != w], horizon)
        held = rows[rows["window"] == w]
        parts.append(apply(held, q, dict(zip(held["series"], held["iscale" if "iscale" in held else "scale"]))))
    return coverage(pd.concat(parts, ignore_index=True)) if parts else coverage(pd.DataFrame())
