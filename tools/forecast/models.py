"""The candidates: naive and seasonal-naive baselines (always), and a global gradient-boosted model
over all series. A fitted model is a plain dict (names, numbers, lists) plus, for the boosted model,
a scikit-learn HistGradientBoostingRegressor: skops saves both without any type of ours, so the
saved model loads without widening model_io.TRUSTED_TYPES.

HistGradientBoosting rather than XGBoost: it is already a core dependency, handles the NaN lags at
the start of a series natively, and is fast enough on a panel; XGBoost gave no gain worth a second
code path here. Its loss is absolute error because the default metric (MASE) is an absolute error.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.forecast.covariates import Covariates
from dsagent.tools.forecast.features import series_rows, training_rows

from dsagent.tools.forecast.naive import baseline

BASELINES = ("naive", "seasonal_naive")

CANDIDATES = ("naive", "seasonal_naive", "gbm")  # always; stats.NAMES join them where series are few
STATISTICAL = ("ets", "theta", "arima", "arima_log", "theta_log")  # per series, tools/forecast/stats.py (stats.NAMES)
FAMILY = {"naive": "baseline", "seasonal_naive": "baseline", "gbm": "hist_gb", "ets": "statsmodels", "theta": "statsmodels",
          "arima": "statsmodels", "arima_log": "statsmodels", "theta_log": "statsmodels", "blend": "blend"}

Series = dict[str, tuple[pd.DatetimeIndex, np.ndarray]]  # series id -> (regular times, values)


def one_thread():
    """OpenMP on one thread: these fits are small, and on a shared 2-core machine more threads
    oversubscribe it (measured: a 1,500-row fit took 50 s with the default threads, 1.2 s with one)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


def as_series(frame: pd.DataFrame) -> Series:
    return {s: (pd.DatetimeIndex(g["time"]), g["y"].to_numpy(dtype=float)) for s, g in frame.groupby("series", sort=True)}


def future_times(times: pd.DatetimeIndex, horizon: int, freq: str) -> pd.DatetimeIndex:
    return pd.date_range(times[-1], periods=horizon + 1, freq=freq)[1:]


def fit(name: str, history: Series, horizon: int, period: int, freq: str, seed: int = 0,
        members: list[str] | None = None, cov_frame: pd.DataFrame | None = None, cov_spec: Covariates | None = None) -> dict[str, Any]:
    """A fitted model as a dict. Only `history` is read: a backtest passes the past of its origin.
    `members` are the models a "blend" averages; `cov_frame` (the panel frame with its covariate
    columns) and `cov_spec` feed the global model's covariate features (tools/forecast/covariates.py)."""
    started = time.perf_counter()
    state: dict[str, Any] = {"name": name, "horizon": int(horizon), "period": int(period), "freq": freq}
    if name == "gbm":
        from sklearn.ensemble import HistGradientBoostingRegressor

        grids = {s: t.append(future_times(t, horizon, freq)) for s, (t, _) in history.items()}
        covs = {s: cov_spec.arrays(cov_frame, s, grids[s]) for s in history} if cov_spec else None
        X, target = training_rows({s: y for s, (_, y) in history.items()}, grids, horizon, period, covs, cov_spec)
        state["covariates"] = cov_spec.to_dict() if cov_spec else None
        if len(X) < 20:
            state["fallback"] = "seasonal_naive"  # too little history to learn from: say so, forecast like the baseline
        else:
            X = X.loc[:, X.notna().any()]  # a lag longer than every history: all NaN, which the binner rejects
            reg = HistGradientBoostingRegressor(loss="absolute_error", learning_rate=0.1, max_iter=150, max_leaf_nodes=15,
                                                min_samples_leaf=10, l2_regularization=1.0, random_state=seed)
            with one_thread():
                reg.fit(X, target)
            state["regressor"] = reg
            state["columns"] = list(map(str, X.columns))
    elif name == "blend":  # the mean of its members' forecasts (the best of the backtest)
        state["members"] = [fit(m, history, horizon, period, freq, seed, cov_frame=cov_frame, cov_spec=cov_spec) for m in members or ()]
        if not state["members"]:
            raise ValueError("a blend needs members")
    elif name not in BASELINES + STATISTICAL:  # a statistical model fits per series when it forecasts
        raise ValueError(f"unknown forecasting model {name!r}; known: {', '.join(CANDIDATES + STATISTICAL)}, blend")
    state["fit_s"] = round(time.perf_counter() - started, 3)
    return state


def forecast(state: dict[str, Any], history: Series, horizon: int | None = None, cov_frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows series, step, time, yhat: `horizon` steps after the last time of each series in `history`.
    A global model fit with covariates reads them from `cov_frame` (known-future ones at the forecast times)."""
    h = int(horizon or state["horizon"])
    if h > state["horizon"]:
        raise ValueError(f"the model was trained for {state['horizon']} steps ahead, not {h}")
    name = state.get("fallback") or state["name"]
    if name == "blend":
        parts = [forecast(m, history, h, cov_frame) for m in state["members"]]
        out = parts[0].copy()
        out["yhat"] = np.mean([p["yhat"].to_numpy() for p in parts], axis=0)
        return out
    if name in STATISTICAL:
        from dsagent.tools.forecast import stats

        local, state["fell_back"] = stats.forecast_series(name, {s: v for s, v in history.items() if len(v[1])}, h, state["period"])
    out = []
    for s, (times, y) in history.items():
        if len(y) == 0:
            continue
        future = future_times(times, h, state["freq"])
        if name in BASELINES:
            yhat = baseline(name, y, h, state["period"])
        elif name in STATISTICAL:
            yhat = local[s]
        else:
            spec = Covariates(**state["covariates"]) if state.get("covariates") else None
            if spec and cov_frame is None:
                raise ValueError("this model uses covariates: pass the frame that carries them")
            grid = times.append(future)
            cov = spec.arrays(cov_frame, s, grid) if spec else None
            X, level = series_rows(y, grid, np.array([len(y) - 1]), h, state["period"], cov, spec)
            with one_thread():
                yhat = state["regressor"].predict(X[state["columns"]]) * level
        out.append(pd.DataFrame({"series": s, "step": np.arange(1, h + 1), "time": future, "yhat": yhat}))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["series", "step", "time", "yhat"])
