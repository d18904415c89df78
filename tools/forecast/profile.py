"""The time-series profile: per-series length, filled gaps, intermittency (share of zeros), and the
strength of trend and seasonality at the period the frequency implies (Hyndman's F_T and F_S on a
moving-average decomposition: 0 none, 1 all of the variation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.forecast.frequency import Panel


def _strengths(y: np.ndarray, m: int) -> tuple[float | None, float | None]:
    if len(y) < max(2 * m, 8):
        return None, None
    w = m if m > 1 else 3
    trend = pd.Series(y).rolling(w, center=True, min_periods=w).mean().to_numpy()
    ok = ~np.isnan(trend)
    detrended = y[ok] - trend[ok]
    if m > 1:
        pos = np.arange(len(y))[ok] % m
        seasonal = pd.Series(detrended).groupby(pos).transform("mean").to_numpy()
    else:
        seasonal = np.zeros_like(detrended)
    rem = detrended - seasonal
    var_r = np.var(rem)
    f_t = max(0.0, 1 - var_r / np.var(trend[ok] + rem)) if np.var(trend[ok] + rem) > 0 else 0.0
    f_s = max(0.0, 1 - var_r / np.var(seasonal + rem)) if m > 1 and np.var(seasonal + rem) > 0 else None
    return round(float(f_t), 3), (round(float(f_s), 3) if f_s is not None else None)


def profile_panel(panel: Panel, limit: int = 50) -> dict[str, Any]:
    rows = []
    for s, g in panel.frame.groupby("series", sort=True):
        y = g["y"].to_numpy()
        f_t, f_s = _strengths(y, panel.period)
        rows.append({"series": s, "length": int(len(y)), "start": str(g["time"].iloc[0]), "end": str(g["time"].iloc[-1]),
                     "zeros": round(float(np.mean(y == 0)), 3), "mean": float(np.mean(y)), "trend_strength": f_t,
                     "seasonal_strength": f_s})
    rows.sort(key=lambda r: -abs(r["mean"]) * r["length"])
    seasonal = [r["seasonal_strength"] for r in rows if r["seasonal_strength"] is not None]
    return {"frequency": panel.freq, "period": panel.period, "n_series": len(rows), "gaps_filled": panel.gaps_filled,
            "notes": panel.notes, "median_seasonal_strength": float(np.median(seasonal)) if seasonal else None,
            "intermittent_series": sum(r["zeros"] > 0.3 for r in rows), "series": rows[:limit]}
