"""Prediction intervals (80% and 95%) from backtest residuals: split conformal, per horizon step.

The absolute backtest errors of the chosen model, each divided by its series' MASE scale, give per
step k a quantile q_k at level ceil((n+1) p) / n; the interval is the forecast +- q_k times the
series' scale, so a large series gets a wide interval and a small one a narrow one. Step k borrows
its neighbours' errors until it has MIN_POINTS, so a single series with three windows still gets a
usable quantile. Coverage is checked honestly: leave-one-window-out on the backtests, and on the
untouched test window.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

LEVELS = (80, 95)
MIN_POINTS = 20


def _q(values: np.ndarray, level: int) -> float:
    n = len(values)
    if n == 0:
        return float("nan")
    rank = min(math.ceil((n + 1) * level / 100), n)
    return float(np.sort(values)[rank - 1])


def quantiles(rows: pd.DataFrame, horizon: int) -> dict[str, list[float]]:
    """{"80": [q_1 .. q_h], "95": [...]} in units of the series' MASE scale."""
    err = (rows["y"] - rows["yhat"]).abs().to_numpy() / rows["scale"].to_numpy()
    step = rows["step"].to_numpy()
    out: dict[str, list[float]] = {str(lv): [] for lv in LEVELS}
    for k in range(1, horizon + 1):
        r = 0
        while True:
            near = err[np.abs(step - k) <= r]
            if len(near) >= MIN_POINTS or r >= horizon:
                break
            r += 1
        for lv in LEVELS:
            out[str(lv)].append(_q(near, lv))
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


def backtest_coverage(rows: pd.DataFrame, horizon: int) -> dict[str, float | None]:
    """Leave-one-window-out: each window's points against quantiles from the other windows."""
    parts = []
    for w in sorted(rows["window"].unique()):
        q = quantiles(rows[rows["window"] != w], horizon)
        held = rows[rows["window"] == w]
        parts.append(apply(held, q, dict(zip(held["series"], held["scale"]))))
    return coverage(pd.concat(parts, ignore_index=True)) if parts else coverage(pd.DataFrame())
