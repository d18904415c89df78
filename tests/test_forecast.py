"""Forecasting (issue 17): accuracy on a synthetic panel, leak-free backtests, row order, and the
CLI end to end (`dsagent run` with task: forecast, then `dsagent predict`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dsagent.tools.forecast import backtest, models
from dsagent.tools.forecast.frequency import ForecastDataError, build_panel
from dsagent.tools.forecast.task import ForecastSpec, ForecastTask


def panel_frame(n_series: int = 2, periods: int = 40, freq: str = "QS", period: int = 4, seed: int = 0) -> pd.DataFrame:
    """Trend + seasonality + a little noise, one level per series."""
    t = pd.date_range("2000-01-01", periods=periods, freq=freq)
    rng = np.random.default_rng(seed)
    parts = []
    for s in range(n_series):
        i = np.arange(periods)
        y = 100 * (s + 1) + (s + 1) * i + 15 * (s + 1) * np.sin(2 * np.pi * i / period) + rng.normal(0, 1.5, periods)
        parts.append(pd.DataFrame({"when": t.strftime("%Y-%m-%d"), "shop": f"s{s}", "sales": y.round(3)}))
    return pd.concat(parts, ignore_index=True)


def test_synthetic_panel_is_forecast_within_a_stated_error():
    """Known trend and seasonality: the global model's test-window MASE stays under 0.5 (the seasonal
    naive, which misses the trend, scores about 1) and its sMAPE under 5%."""
    task = ForecastTask(ForecastSpec("sales", "when", ["shop"], horizon=4))
    spec, panel = task.define(panel_frame(n_series=3))
    assert spec["frequency"] == "QS-JAN" and spec["period"] == 4 and spec["split"]["windows"] >= 3
    results = task.backtest(panel, only=["naive", "seasonal_naive", "gbm"])
    board = task.leaderboard(results)
    assert board[0]["name"] == "gbm"
    ev, _ = task.evaluate(panel, results, "gbm")
    assert ev["test_score"] < 0.5 < ev["baseline_score"]
    assert ev["test_metrics"]["smape"] < 5.0
    assert [r["step"] for r in ev["by_step"]] == [1, 2, 3, 4] and len(ev["by_series"]) == 3


def test_backtest_never_reads_past_its_origin():
    """Poison every value after a backtest origin: the forecasts made at that origin (and every earlier
    one) are unchanged, for the global model whose lags and rolling windows could leak."""
    frame = panel_frame(periods=28)
    panel = build_panel(frame, "when", "sales", ["shop"])
    clean = backtest.run_backtest(panel, 4, ("gbm",))
    assert clean["windows"] >= 3
    rows = clean["models"]["gbm"]["rows"]
    for w, origin in enumerate(pd.to_datetime(clean["origins"])):
        poisoned = build_panel(frame, "when", "sales", ["shop"])
        after = poisoned.frame["time"] > origin
        poisoned.frame.loc[after, "y"] = 1e9 * np.arange(1, after.sum() + 1)
        again = backtest.run_backtest(poisoned, 4, ("gbm",))["models"]["gbm"]["rows"]
        for k in range(w + 1):
            a, b = rows[rows["window"] == k], again[again["window"] == k]
            np.testing.assert_allclose(a["yhat"].to_numpy(), b["yhat"].to_numpy(), err_msg=f"origin {origin}: window {k} moved")


def test_shuffled_file_gives_the_same_backtest_as_a_sorted_one():
    frame = panel_frame()
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    names = ("seasonal_naive", "gbm")
    a = backtest.run_backtest(build_panel(frame, "when", "sales", ["shop"]), 4, names)
    b = backtest.run_backtest(build_panel(shuffled, "when", "sales", ["shop"]), 4, names)
    for name in names:
        assert a["models"][name]["mase_windows"] == b["models"][name]["mase_windows"]


def test_statistical_models_join_the_backtest_where_series_are_few():
    """One seasonal series: ETS, Theta and ARIMA (statsmodels, per series) are backtested beside the
    baselines and the global model and each beats the naive; the blend of the best is a candidate; the
    chosen model is scored on the test window and forecasts from history. With no time left, or with
    more series than MAX_SERIES, they are skipped with a notice and the run goes on without them."""
    from dsagent.tools.forecast import stats
    from dsagent.tools.forecast.task import predict_from_history

    task = ForecastTask(ForecastSpec("sales", "when", [], horizon=4))
    _, panel = task.define(panel_frame(n_series=1, periods=24).drop(columns="shop"))
    results = task.backtest(panel, seconds_left=600)
    board = {r["name"]: r for r in task.leaderboard(results)}
    assert {"ets", "theta", "arima"} <= set(board) and not results["notes"], results["notes"]
    for name in ("ets", "theta", "arima"):
        assert board[name]["family"] == "statsmodels" and board[name]["cv_mean"] < board["naive"]["cv_mean"], name
    assert "blend" in board and len(board["blend"]["members"]) >= 2
    best = min(("ets", "theta", "arima"), key=lambda n: board[n]["cv_mean"])
    ev, out = task.evaluate(panel, results, best, board=list(board.values()))
    assert {"ets", "theta", "arima", "blend"} <= set(ev["test_by_model"]) and ev["test_score"] < 1.0
    assert len(out["model"]["history"]["all"]["y"]) == 24  # a local model refits on the whole history
    assert len(predict_from_history(out["model"])) == 4
    names, notes = task.candidates(panel, seconds_left=0.0)
    assert names == models.CANDIDATES and len(notes) == len(stats.NAMES) and all("skipped: an estimated" in n for n in notes)
    many = ForecastTask(ForecastSpec("sales", "when", ["shop"], horizon=4))
    _, wide = many.define(panel_frame(n_series=stats.MAX_SERIES + 1, periods=24))
    names, notes = many.candidates(wide, seconds_left=600)
    assert names == models.CANDIDATES and f"{stats.MAX_SERIES + 1} series" in notes[0]



def test_a_spent_budget_keeps_the_baselines_and_one_learner_and_scores_only_what_ships():
    """Past the deadline the backtest launches no model it cannot finish: the baselines and the first
    learner (the statistical ones go before the costlier global model) run, the rest are dropped with a
    note; a panel with no statistical model keeps its global model. The evaluation then scores only the
    chosen model and the seasonal naive on the test window, and says which it left out."""
    import time

    task = ForecastTask(ForecastSpec("sales", "when", [], horizon=4))
    _, panel = task.define(panel_frame(n_series=1, periods=24).drop(columns="shop"))
    names = ("naive", "seasonal_naive", "gbm", "ets", "theta")
    results = backtest.run_backtest(panel, 4, names, deadline=time.perf_counter() - 1)
    assert set(results["models"]) == {"naive", "seasonal_naive", "ets"}, results["notes"]
    assert [n.split()[0] for n in results["notes"]] == ["theta", "gbm"]
    alone = backtest.run_backtest(panel, 4, models.CANDIDATES, deadline=time.perf_counter() - 1)
    assert set(alone["models"]) == set(models.CANDIDATES)
    ev, _ = task.evaluate(panel, results, "ets", board=task.leaderboard(results), seconds_left=0.0)
    assert set(ev["test_by_model"]) == {"ets", "seasonal_naive"} and ev["not_scored_on_test"] == ["naive"]

def test_duplicated_timestamps_are_refused_and_gaps_filled():
    frame = panel_frame(periods=24)
    with pytest.raises(ForecastDataError, match="share a timestamp.*series_columns"):
        build_panel(pd.concat([frame, frame.iloc[[3]]]), "when", "sales", ["shop"])
    gappy = frame.drop(index=[5, 30])
    panel = build_panel(gappy, "when", "sales", ["shop"])
    assert panel.gaps_filled == 2 and len(panel.frame) == len(frame)
    with pytest.raises(ForecastDataError, match="MAPE|too few"):
        backtest.plan_windows(12, 4, 4)


def test_mape_is_refused_when_an_actual_is_zero():
    rows = pd.DataFrame({"y": [0.0, 2.0], "yhat": [1.0, 2.0], "scale": [1.0, 1.0]})
    m = backtest.metrics(rows)
    assert m["mape"] is None and "zero" in m["mape_refused"] and m["mase"] == pytest.approx(0.5)


CMD = [sys.executable, "-m", "dsagent.cli"]


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    """ONE offline `dsagent run --json` with task: forecast on 36 quarters of a 2-series panel (shuffled
    rows), shared by the predict and monitor tests; the 8 quarters after it are the arriving actuals.
    Returns (RunResult dict, the full 44-quarter frame, the data file)."""
    tmp = tmp_path_factory.mktemp("forecast-run")
    full = panel_frame(n_series=2, periods=44)
    data, answers = tmp / "sales.csv", tmp / "a.yaml"
    first = sorted(full["when"].unique())[:36]
    full[full["when"].isin(first)].sample(frac=1.0, random_state=0).to_csv(data, index=False)
    answers.write_text("task: forecast\ntarget: sales\ntime_column: when\nseries_columns: [shop]\nhorizon: 4\nforecast_models: [gbm]\n")
    run = subprocess.run(CMD + ["run", str(data), "--answers", str(answers), "--json", "--backend", "offline",
                                "--sessions-dir", str(tmp / "sessions"), "--time-budget", "60"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout), full, data


def test_run_then_predict_from_the_cli(tmp_path, forecast_run):
    """`dsagent run sales.csv --answers a.yaml --json` with task: forecast completes offline with every
    deliverable; `dsagent predict` returns exactly horizon x series rows with the promised columns."""
    result, _, data = forecast_run
    cmd = CMD
    assert result["status"] == "completed" and result["task"] == "forecast" and result["metric"] == "mase"
    assert result["test_score"] < result["baseline_score"]
    for key in ("model", "report", "model_card", "notebook", "monitoring"):
        assert result["artifacts"][key], key
    assert "Do not use it for" in open(result["artifacts"]["model_card"]).read()
    # the report plots the largest series and the worst by test MASE (one plot when they are the same)
    report_md = open(result["artifacts"]["report"]).read()
    plots_dir = Path(result["artifacts"]["report"]).parent / "plots"
    assert "(plots/forecast_largest.png)" in report_md and (plots_dir / "forecast_largest.png").stat().st_size > 10_000
    assert ("(plots/forecast_worst.png)" in report_md and (plots_dir / "forecast_worst.png").is_file()) or "also the worst" in report_md
    out = tmp_path / "forecast.csv"
    pred = subprocess.run(cmd + ["predict", result["session_dir"], "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert pred.returncode == 0, pred.stderr
    got = pd.read_csv(out)
    assert list(got.columns) == ["when", "shop", "prediction", "lower_80", "upper_80", "lower_95", "upper_95"]
    assert len(got) == 4 * 2 and sorted(got["shop"].unique()) == ["s0", "s1"]
    assert (got["lower_95"] <= got["lower_80"]).all() and (got["lower_80"] <= got["prediction"]).all()
    assert (got["prediction"] <= got["upper_80"]).all() and (got["upper_80"] <= got["upper_95"]).all()
    assert got["when"].min() > pd.read_csv(data)["when"].max()
    beyond = subprocess.run(cmd + ["predict", result["session_dir"], "--horizon", "5"], capture_output=True, text=True, timeout=120)
    assert beyond.returncode == 2 and "beyond the 4 steps" in beyond.stderr and "Traceback" not in beyond.stderr


def test_monitor_scores_arriving_actuals_0_3_4(tmp_path, forecast_run, dsagent_main):
    """`dsagent monitor SESSION ACTUALS.csv` on the 8 quarters after the run's data: the true continuation
    is on track (0); a level shift of 6.5 (about one MASE scale unit) takes the error out of the backtest's
    range but keeps the 95% intervals' coverage (3); a 50% jump passes the retrain thresholds (4). Actuals
    that leave a step out after the history are bad input (2, one line)."""
    result, full, _ = forecast_run
    plan = json.loads(open(result["artifacts"]["monitoring"]).read())
    assert plan["task"] == "forecast" and plan["thresholds"]["mase_retrain"] > plan["thresholds"]["mase_investigate"] > 0
    last = sorted(full["when"].unique())[36:]
    actuals = full[full["when"].isin(last)].reset_index(drop=True)

    def monitor(frame, name, in_a_process=False):
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        if in_a_process:  # the real exit code of a real process, once
            return subprocess.run(CMD + ["monitor", result["session_dir"], str(path), "--json"], capture_output=True, text=True,
                                  timeout=120)
        return dsagent_main("monitor", result["session_dir"], path, "--json")  # the CLI's main here: no Python start

    expected = {"on_track": (actuals, 0, "ok"), "off": (actuals.assign(sales=actuals["sales"] + 6.5), 3, "investigate"),
                "far_off": (actuals.assign(sales=actuals["sales"] * 1.5), 4, "retrain")}
    for name, (frame, code, verdict) in expected.items():
        proc = monitor(frame, name)
        assert proc.returncode == code, (name, proc.stdout[-1500:], proc.stderr[-1500:])
        report = json.loads(proc.stdout)
        assert report["verdict"] == verdict and report["rows"] == 16 and report["forecasts"] == 4, name
        if code == 3:
            assert "outside the backtest's range" in report["reasons"][0] and report["coverage"]["95"] >= 0.75
    gap = monitor(actuals[actuals["when"] != last[0]], "gap", in_a_process=True)
    assert gap.returncode == 2 and "steps between are missing" in gap.stderr and "Traceback" not in gap.stderr


def test_serve_answers_post_forecast_like_dsagent_predict(tmp_path, forecast_run):
    """`dsagent serve` on a forecast session (a real server process): POST /forecast with no body gives
    what `dsagent predict SESSION` writes; recent history as the body (CSV or JSON) extends the saved one;
    ?horizon and ?series narrow it; a horizon beyond the trained one, an unknown series and a history
    without the target are a 422 with one line; POST /predict says to use /forecast."""
    import httpx2 as httpx
    from test_serve import _start

    from dsagent.tools.forecast.predict import predict_forecast

    result, full, _ = forecast_run
    out = tmp_path / "predict.csv"
    predict_forecast(result["session_dir"], None, None, out)  # what `dsagent predict SESSION -o OUT` writes
    expected = pd.read_csv(out)
    proc, url = _start(Path(result["session_dir"]), "--no-log")
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            assert "/forecast" in client.get("/openapi.json").json()["paths"]
            meta = client.get("/metadata").json()
            assert meta["task"] == "forecast" and meta["horizon"] == 4 and meta["series"] == ["s0", "s1"]
            r = client.post("/forecast")
            assert r.status_code == 200, r.text
            got = pd.DataFrame(r.json()["forecasts"])
            assert r.json()["rows"] == 8 and list(got.columns) == list(expected.columns)
            assert got["when"].tolist() == expected["when"].tolist() and got["shop"].tolist() == expected["shop"].tolist()
            np.testing.assert_allclose(got[["prediction", "upper_95"]].to_numpy(), expected[["prediction", "upper_95"]].to_numpy(), rtol=1e-9)

            # two more quarters of history: the forecast starts after them, for the series asked for
            more = full[full["when"].isin(sorted(full["when"].unique())[36:38])]
            for body, kind in ((more.to_csv(index=False), "text/csv"), (more.to_json(orient="records"), "application/json")):
                r = client.post("/forecast?horizon=2&series=s1", content=body, headers={"content-type": kind})
                assert r.status_code == 200, r.text
                rows = r.json()["forecasts"]
                assert [x["shop"] for x in rows] == ["s1", "s1"] and rows[0]["when"] > more["when"].max()

            cases = [("/forecast?horizon=5", None, "beyond the 4 steps"), ("/forecast?horizon=two", None, "whole number"),
                     ("/forecast?series=s9", None, "unknown series 's9'"),
                     ("/forecast", more.drop(columns=["sales"]).to_csv(index=False), "'sales'")]
            for path, body, words in cases:
                r = client.post(path, content=body or b"", headers={"content-type": "text/csv"})
                detail = r.json()["detail"]
                assert r.status_code == 422 and words in detail and "\n" not in detail, (path, r.text)
            r = client.post("/predict", content=more.to_csv(index=False), headers={"content-type": "text/csv"})
            assert r.status_code == 422 and "POST /forecast" in r.json()["detail"]
            assert "dsagent_rows_scored_total 12.0" in client.get("/metrics").text  # 8 + 2 + 2 forecast rows
    finally:
        proc.terminate()
        proc.wait(timeout=20)
