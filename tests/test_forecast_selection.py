"""Forecast quality (issue 17, second round): the statistical models choose their configuration per
series from the data (ETS's multiplicative season, a log transform where the seasonal swing grows
with the level), and the 95% intervals cover about 95% (90-98%) of held-out points."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dsagent.tools.forecast import stats
from dsagent.tools.forecast.task import ForecastSpec, ForecastTask


def quarterly(level, seed: int = 0, quarters: int = 60, mult: bool = True) -> np.ndarray:
    """Trend x season (or + season): a series whose seasonal swing grows with its level when `mult`."""
    i = np.arange(quarters)
    rng = np.random.default_rng(seed)
    trend = level * np.exp(0.04 * i)
    season = np.array([0.4, -0.1, -0.35, 0.05])[i % 4]
    noise = rng.normal(0, 0.02, quarters)
    return trend * (1 + season) * (1 + noise) if mult else trend[0] * (1 + 0.01 * i) + level * season + level * noise


def test_selection_and_transform_follow_a_multiplicative_season():
    """A multiplicative series: ETS picks the multiplicative season (an additive one on an additive
    series), and the backtest ranks ARIMA on log(y) above ARIMA on y."""
    mult, add = quarterly(100.0), quarterly(100.0, seed=1, mult=False)
    assert stats.forecast_one("ets", mult, 4, 4) is not None and stats.forecast_one("ets", add, 4, 4) is not None
    assert stats.configuration("ets", mult, 4)[0] == "mul"
    assert stats.configuration("ets", add, 4)[0] == "add"
    frame = pd.DataFrame({"quarter": pd.date_range("2000-01-01", periods=60, freq="QS").strftime("%Y-%m-%d"), "y": mult})
    task = ForecastTask(ForecastSpec("y", "quarter", [], horizon=4))
    _, panel = task.define(frame)
    results = task.backtest(panel, seconds_left=600, only=["seasonal_naive", "arima"])
    board = {r["name"]: r for r in task.leaderboard(results)}
    assert {"arima", "arima_log"} <= set(board), results["notes"]
    assert board["arima_log"]["cv_mean"] < board["arima"]["cv_mean"] < board["seasonal_naive"]["cv_mean"]


def test_95_intervals_cover_90_to_98_percent_on_a_growing_panel():
    """40 series whose level and noise grow 2% a month: the interval width follows the recent swings,
    so the 95% interval covers 90-98% of the untouched test window and of the backtests
    (leave-one-window-out), and the 80% one less than the 95% one."""
    rng = np.random.default_rng(7)
    months, parts = 60, []
    for s in range(40):
        i = np.arange(months)
        y = (50 + 10 * s) * np.exp(0.02 * i) * (1 + rng.normal(0, 0.05, months))
        parts.append(pd.DataFrame({"month": pd.date_range("2001-01-01", periods=months, freq="MS").strftime("%Y-%m-%d"),
                                   "shop": f"s{s}", "y": y}))
    task = ForecastTask(ForecastSpec("y", "month", ["shop"], horizon=6))
    _, panel = task.define(pd.concat(parts, ignore_index=True))
    results = task.backtest(panel, only=["naive"])
    ev, _ = task.evaluate(panel, results, "naive", board=[{"name": "naive"}, {"name": "seasonal_naive"}])
    assert 0.90 <= ev["coverage_test"]["95"] <= 0.98, ev["coverage_test"]
    assert 0.90 <= ev["coverage_backtest"]["95"] <= 0.98, ev["coverage_backtest"]
    assert ev["coverage_test"]["80"] < ev["coverage_test"]["95"]
