"""Forecasting with covariates (issue 17): known-future columns are same-time features that `dsagent
predict` requires for the horizon; every other numeric column enters only through its past."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from dsagent.tools.forecast import backtest
from dsagent.tools.forecast.task import ForecastSpec, ForecastTask

CMD = [sys.executable, "-m", "dsagent.cli"]


def promo_frame(periods: int = 40, seed: int = 1) -> pd.DataFrame:
    """Two quarterly series whose sales jump by 40 in a promotion quarter (a known-future 0/1 flag), plus
    a past-only column of noise (footfall)."""
    t = pd.date_range("2000-01-01", periods=periods, freq="QS")
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(2):
        i = np.arange(periods)
        promo = rng.integers(0, 2, periods)
        y = 100 * (s + 1) + 2 * i + 10 * np.sin(2 * np.pi * i / 4) + 40 * promo + rng.normal(0, 1.0, periods)
        parts.append(pd.DataFrame({"when": t.strftime("%Y-%m-%d"), "shop": f"s{s}", "promo": promo,
                                   "footfall": rng.normal(50, 5, periods).round(2), "sales": y.round(3)}))
    return pd.concat(parts, ignore_index=True)


def test_past_only_columns_are_read_only_up_to_each_origin():
    """Poison the past-only column (and the target) after a backtest origin: the forecasts made at that
    origin and before are unchanged. The known-future column is a same-time feature, the other only lagged."""
    frame = promo_frame(periods=28)
    task = ForecastTask(ForecastSpec("sales", "when", ["shop"], horizon=4, known_future_columns=["promo"]))
    _, panel = task.define(frame)
    assert panel.covariates.known == ["promo"] and panel.covariates.past == ["footfall"]
    clean = backtest.run_backtest(panel, 4, ("gbm",))
    rows = clean["models"]["gbm"]["rows"]
    origin = pd.Timestamp(clean["origins"][1])
    poisoned = task.panel(frame)
    after = poisoned.frame["time"] > origin
    poisoned.frame.loc[after, ["y", "cov:footfall"]] = 1e9
    again = backtest.run_backtest(poisoned, 4, ("gbm",))["models"]["gbm"]["rows"]
    for k in (0, 1):
        np.testing.assert_allclose(rows[rows["window"] == k]["yhat"], again[again["window"] == k]["yhat"])
    from dsagent.tools.forecast import models

    columns = models.fit("gbm", backtest.cut(panel.frame, origin), 4, 4, panel.freq, cov_frame=panel.frame,
                         cov_spec=panel.covariates)["columns"]
    assert "future_promo" in columns and "past_footfall_lag0" in columns
    assert not any(c.startswith("future_footfall") or c.startswith("past_promo") for c in columns)


def test_known_future_columns_through_the_cli(tmp_path, dsagent_main):
    """`known_future_columns: [promo]`: the run uses it (the promotion effect shows in the forecasts);
    `dsagent predict` needs its values for the horizon, a one-line error (exit 2) when they are missing."""
    full = promo_frame()
    last = sorted(full["when"].unique())[-4:]
    data, answers = tmp_path / "sales.csv", tmp_path / "a.yaml"
    history = full[~full["when"].isin(last)]
    history.to_csv(data, index=False)
    answers.write_text("task: forecast\ntarget: sales\ntime_column: when\nseries_columns: [shop]\nhorizon: 4\n"
                       "known_future_columns: [promo]\nforecast_models: [gbm]\n")
    run = subprocess.run(CMD + ["run", str(data), "--answers", str(answers), "--json", "--backend", "offline", "--sessions-dir",
                                str(tmp_path / "s"), "--time-budget", "60"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    session = json.loads(run.stdout)["session_dir"]

    def predict(promo: int | None, name: str):
        future = full[full["when"].isin(last)].assign(sales=np.nan, footfall=np.nan)
        future["promo"] = promo
        path, out = tmp_path / f"{name}.csv", tmp_path / f"{name}_out.csv"
        (history if promo is None else pd.concat([history, future])).to_csv(path, index=False)
        if promo is None:  # the one-line error of a real process
            proc = subprocess.run(CMD + ["predict", session, str(path), "-o", str(out)], capture_output=True, text=True, timeout=120)
        else:  # the CLI's main in this process: no Python start per call
            proc = dsagent_main("predict", session, path, "-o", out)
        return proc, (pd.read_csv(out) if proc.returncode == 0 else None)

    (p1, on), (p0, off) = predict(1, "promo_on"), predict(0, "promo_off")
    assert p1.returncode == 0 and p0.returncode == 0, p1.stderr + p0.stderr
    assert len(on) == 8 and list(on["when"].unique()) == last
    assert (on["prediction"] - off["prediction"]).mean() > 20  # the true effect is 40
    missing, _ = predict(None, "no_future")
    assert missing.returncode == 2 and "known-future column 'promo' has no value at" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
