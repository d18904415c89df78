"""Statistical models per series (statsmodels): ETS, Theta and ARIMA, for panels with few series.

Each is a local model: it is fit on one series' history at the moment it forecasts (in a backtest,
the past of the origin; at predict time, the saved history plus any new rows), so "fitting" stores
only the configuration. The configurations are small fixed searches, not the full auto-selection
of statsforecast, to keep the cost predictable:
- ETS: additive errors, additive damped trend, additive season (one configuration: each ETS fit is
  a maximum-likelihood search, the slowest of the three);
- Theta: statsmodels' ThetaModel, deseasonalised when two seasons of history exist;
- ARIMA: (1,1,1) with a seasonal (0,1,1) at the period (the "airline" structure) when the period is
  at most 12 and three seasons exist, else (2,1,1).
A fit that fails or returns a non-finite forecast falls back to the seasonal naive for that series
(counted in the model's state, said in the leaderboard), so one awkward series never stops a run.

Where series are many, per-series fits cost too much and the global model learns across them: the
statistical models run for at most MAX_SERIES series, and only when a timed trial fit says the
backtest fits the time left.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

NAMES = ("ets", "theta", "arima")
MAX_SERIES = 20
SHARE_OF_BUDGET = 0.4  # at most this share of the time left goes to the statistical models' backtest


def available() -> str | None:
    """None when statsmodels imports, else the reason it cannot be used."""
    try:
        import statsmodels  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a core dependency; said, never a crash
        return f"statsmodels is not installed ({exc}); the statistical models are skipped"
    return None


def _ets(y: np.ndarray, h: int, m: int) -> np.ndarray:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    seasonal = m > 1 and len(y) >= 2 * m + 2
    best = ETSModel(y, error="add", trend="add", damped_trend=True, seasonal="add" if seasonal else None,
                    seasonal_periods=m if seasonal else None).fit(disp=False)
    return np.asarray(best.forecast(h), dtype=float)


def _theta(y: np.ndarray, h: int, m: int) -> np.ndarray:
    from statsmodels.tsa.forecasting.theta import ThetaModel

    season = m > 1 and len(y) >= 2 * m
    return np.asarray(ThetaModel(y, period=m if season else 1, deseasonalize=season).fit().forecast(h), dtype=float)


def _arima(y: np.ndarray, h: int, m: int) -> np.ndarray:
    from statsmodels.tsa.arima.model import ARIMA

    if 1 < m <= 12 and len(y) >= 3 * m + 2:
        model = ARIMA(y, order=(1, 1, 1), seasonal_order=(0, 1, 1, m))
    else:
        model = ARIMA(y, order=(2, 1, 1))
    return np.asarray(model.fit().forecast(h), dtype=float)


FITTERS = {"ets": _ets, "theta": _theta, "arima": _arima}
MODULES = {"ets": "statsmodels.tsa.exponential_smoothing.ets", "theta": "statsmodels.tsa.forecasting.theta",
           "arima": "statsmodels.tsa.arima.model"}


def _import(name: str) -> None:
    import importlib

    importlib.import_module(MODULES[name])


def forecast_one(name: str, y: np.ndarray, h: int, m: int) -> np.ndarray | None:
    """h forecasts of one series, or None when the model cannot fit it (the caller falls back)."""
    if len(y) < max(2 * m, 8) if m > 1 else len(y) < 8:
        return None
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # convergence chatter on short series: the fallback handles failures
            out = FITTERS[name](np.asarray(y, dtype=float), h, m)
    except Exception:  # noqa: BLE001 - any statsmodels failure means "this series: use the fallback"
        return None
    return out if len(out) == h and np.isfinite(out).all() else None


def estimate_seconds(name: str, series: dict[str, np.ndarray], horizon: int, period: int, fits: int) -> float:
    """Time one fit on the longest series, times the series, times `fits` per series (the backtest
    windows, the test window and the final model): the cost estimate the budget check reads."""
    longest = max(series.values(), key=len)
    _import(name)  # the first import of statsmodels takes seconds: not a cost of every fit
    started = time.perf_counter()
    forecast_one(name, longest, horizon, period)
    return (time.perf_counter() - started) * len(series) * fits


def plan(series: dict[str, np.ndarray], horizon: int, period: int, windows: int, seconds_left: float,
         names: list[str] | tuple[str, ...] = NAMES) -> tuple[list[str], list[str]]:
    """(the statistical models among `names` to backtest, notes on those left out and why)."""
    reason = available()
    if reason:
        return [], [reason]
    if len(series) > MAX_SERIES:
        return [], [f"statistical models (ETS, Theta, ARIMA) skipped: {len(series)} series (they run per series up to "
                    f"{MAX_SERIES}); the global model learns across series instead"]
    chosen, notes, budget = [], [], SHARE_OF_BUDGET * seconds_left
    for name in names:
        cost = estimate_seconds(name, series, horizon, period, windows + 2)
        if cost > budget:
            notes.append(f"{name} skipped: an estimated {cost:.0f} s for {len(series)} series x {windows + 2} fits, more than "
                         f"the {budget:.0f} s it may use of the time left")
            continue
        chosen.append(name)
        budget -= cost
    return chosen, notes


def forecast_series(name: str, history: dict[str, Any], horizon: int, period: int) -> tuple[dict[str, np.ndarray], int]:
    """Per series id: h forecasts (seasonal naive where the model failed); and how many fell back."""
    from dsagent.tools.forecast.naive import baseline

    out, fell_back = {}, 0
    for s, (_, y) in history.items():
        yhat = forecast_one(name, y, horizon, period)
        if yhat is None:
            fell_back += 1
            yhat = baseline("seasonal_naive", y, horizon, period)
        out[s] = yhat
    return out, fell_back
