"""The naive and seasonal-naive forecasts: the baselines every forecast is judged against, and the
fallback of a statistical model that fails on a series (a module of its own so that both the
candidates and the statistical models read it without importing each other)."""

from __future__ import annotations

import numpy as np


def baseline(name: str, y: np.ndarray, horizon: int, period: int) -> np.ndarray:
    m = period if name == "seasonal_naive" and period > 1 and len(y) >= period else 1
    last = y[-m:]
    return np.array([last[(k - 1) % m] for k in range(1, horizon + 1)], dtype=float)
