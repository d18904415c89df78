"""The forecasting tools: thin wrappers that read the session's data and artifacts, call
ForecastTask (task.py) and write the artifacts. The autopilot runs them in ForecastTask.steps order
after profile_data when the answers say `task: forecast`; Claude may call them too."""

from __future__ import annotations

import json

import pandas as pd

from dsagent.tools import paths
from dsagent.tools.forecast import backtest, report
from dsagent.tools.forecast.monitoring import write_plan
from dsagent.tools.forecast.profile import profile_panel
from dsagent.tools.forecast.task import ForecastSpec, ForecastTask
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, read_json, tool

PROFILE = "forecast_profile.json"
BACKTEST = "forecast_backtest.json"
BACKTEST_ROWS = "forecast_backtest.csv"
TEST_ROWS = "forecast_test.csv"


def _data(ctx: ToolContext) -> pd.DataFrame:
    from dsagent.tools.data import load_table

    if ctx.data_path is None:
        raise ToolError("the session has no data file; start it with a data file")
    return load_table(ctx.data_path)[0]


def _task(ctx: ToolContext) -> tuple[ForecastTask, dict]:
    spec = read_json(ctx.artifacts_dir / paths.TASK)
    if not spec or spec.get("task") != "forecast":
        raise ToolError("define_forecast must run first")
    keys = ("target", "time_column", "series_columns", "horizon", "frequency", "known_future_columns", "past_columns")
    return ForecastTask(ForecastSpec(**{k: spec[k] for k in keys if k in spec})), spec


def _write(ctx: ToolContext, name: str, obj) -> None:
    artifact_path(ctx, name).write_text(json.dumps(obj, indent=1, default=str))


@tool
def define_forecast(ctx: ToolContext, target: str | None = None, time_column: str | None = None,
                    series_columns: list[str] | None = None, horizon: int | None = None,
                    frequency: str | None = None, known_future_columns: list[str] | None = None) -> ToolOutput:
    """Frame a forecasting task: check the time column, infer the frequency, split series, fill or refuse
    gaps and duplicated timestamps, fix the horizon and the rolling-origin backtest windows (the last
    horizon is the untouched test window), and profile the series. Arguments default to the answers.

    Args:
        target: the column to forecast.
        time_column: the timestamp column.
        series_columns: id columns that tell series apart (panel data); none for one series.
        horizon: steps ahead to forecast (default from the frequency).
        frequency: pandas frequency alias (D, W, MS, QS, h...) when the timestamps should not decide it.
        known_future_columns: numeric columns whose future values are given at prediction time (price,
            holidays): same-time features of the global model; every other numeric column is used only
            through its past values.
    """
    given = {"target": target, "time_column": time_column, "series_columns": series_columns, "horizon": horizon,
             "frequency": frequency, "known_future_columns": known_future_columns}
    task = ForecastTask.from_answers({**ctx.answers, **{k: v for k, v in given.items() if v is not None}})
    spec, panel = task.define(_data(ctx))
    prof = profile_panel(panel)
    _write(ctx, paths.TASK, spec)
    _write(ctx, PROFILE, prof)
    summary = {k: spec[k] for k in ("frequency", "period", "horizon", "n_series", "n_times", "gaps_filled", "notes", "assumptions")}
    summary |= {"backtest_windows": spec["split"]["windows"], "test_window": spec["split"]["test_window"],
                "median_seasonal_strength": prof["median_seasonal_strength"], "intermittent_series": prof["intermittent_series"]}
    return ToolOutput(summary=summary, record=spec | {"profile": prof}, files={"task": paths.TASK, "profile": PROFILE})


@tool
def backtest_forecast(ctx: ToolContext) -> ToolOutput:
    """Rolling-origin backtest of the candidates (naive, seasonal naive, global gradient boosting; ETS, Theta
    and ARIMA per series when series are few and the time left allows; the blend of the best four) on the
    windows define_forecast fixed: each fit sees only the past of its origin; MASE, sMAPE, MAE, RMSE, MAPE.
    Writes the leaderboard: the blend first (the backtest's choice: more robust than the single best
    of a few windows), then best MASE first."""
    task, _ = _task(ctx)
    panel = task.panel(_data(ctx))
    results = task.backtest(panel, seed=ctx.seed, progress=lambda m: ctx.report(m), seconds_left=ctx.seconds_left(),
                            only=ctx.answers.get("forecast_models"))
    board = task.leaderboard(results)
    rows = pd.concat([r["rows"].assign(model=n) for n, r in results["models"].items()], ignore_index=True)
    rows.to_csv(artifact_path(ctx, BACKTEST_ROWS), index=False)
    _write(ctx, paths.LEADERBOARD, board)
    _write(ctx, BACKTEST, {k: v for k, v in results.items() if k != "models"}
           | {"models": {n: {k: v for k, v in r.items() if k != "rows"} for n, r in results["models"].items()}})
    return ToolOutput(summary={"leaderboard": [{k: r[k] for k in ("name", "cv_mean", "cv_std")} for r in board],
                               "windows": results["windows"], "origins": results["origins"], "notes": results["notes"]},
                      record={"leaderboard": board}, files={"leaderboard": paths.LEADERBOARD, "backtest": BACKTEST})


@tool
def evaluate_forecast(ctx: ToolContext, model: str = "best") -> ToolOutput:
    """Score the candidates once on the untouched test window (fit on everything before it), attach 80%
    and 95% conformal intervals from the backtest errors with their coverage, refit the chosen model on
    all the data and save it (it forecasts from history with `dsagent predict SESSION`), and write the
    monitoring plan (backtest MASE range, coverage thresholds) that `dsagent monitor SESSION ACTUALS` applies.

    Args:
        model: a leaderboard name, or "best" (the leaderboard's first: the blend when there is one).
    """
    from dsagent.tools.model_io import save_model

    task, spec = _task(ctx)
    board = read_json(ctx.artifacts_dir / paths.LEADERBOARD) or []
    if not board:
        raise ToolError("backtest_forecast must run first")
    chosen = board[0]["name"] if model == "best" else model
    if chosen not in {r["name"] for r in board}:
        raise ToolError(f"no model {model!r} on the leaderboard; choose one of {', '.join(r['name'] for r in board)} or 'best'")
    rows = pd.read_csv(artifact_path(ctx, BACKTEST_ROWS), parse_dates=["time"], dtype={"series": str})
    results = {"models": {chosen: {"rows": rows[rows["model"] == chosen]}}}
    panel = task.panel(_data(ctx))
    ev, out = task.evaluate(panel, results, chosen, seed=ctx.seed, board=board, seconds_left=ctx.seconds_left())
    out["test_rows"].to_csv(artifact_path(ctx, TEST_ROWS), index=False)
    manifest = {"task": "forecast", "target": spec["target"], "time_column": spec["time_column"],
                "series_columns": spec["series_columns"], "horizon": spec["horizon"], "frequency": spec["frequency"],
                "model_name": chosen, "predict_columns": list(task.predict_columns)}
    save_model(out["model"], artifact_path(ctx, paths.MODEL), manifest)
    _write(ctx, paths.EVALUATION, ev)
    windows = (read_json(ctx.artifacts_dir / BACKTEST) or {})["models"][chosen]["mase_windows"]
    write_plan(ctx.artifacts_dir, spec, ev, windows, ctx.answers.get("retrain_every_days") or 90)
    summary = {k: ev[k] for k in ("model", "test_score", "baseline_score", "coverage_test", "coverage_backtest")}
    return ToolOutput(summary=summary | {"metric": "mase (lower is better)"}, record=ev,
                      files={"evaluation": paths.EVALUATION, "model": paths.MODEL, "monitoring": paths.MONITORING})


@tool
def write_forecast_report(ctx: ToolContext, execute_notebook: bool = False) -> ToolOutput:
    """Write the forecast's report (history + forecast + intervals of the largest and the worst series, error by horizon
    step, baselines, coverage), the model card with what the forecast may not be used for, and a notebook
    that re-creates the backtest.

    Args:
        execute_notebook: run the notebook now (re-runs the whole backtest: costs as much time again).
    """
    _, spec = _task(ctx)
    ev = read_json(ctx.artifacts_dir / paths.EVALUATION)
    if not ev or ev.get("task") != "forecast":
        raise ToolError("evaluate_forecast must run first")
    prof = read_json(ctx.artifacts_dir / PROFILE) or {}
    board = read_json(ctx.artifacts_dir / paths.LEADERBOARD) or []
    test_rows = pd.read_csv(artifact_path(ctx, TEST_ROWS), parse_dates=["time"], dtype={"series": str})
    task, _ = _task(ctx)
    panel = task.panel(_data(ctx))
    shown = _plotted_series(prof, ev, test_rows)
    future, why_not = _future(ctx)
    plots = {key: f"{paths.PLOTS_DIR}/forecast_{key}.png" for key in shown} | {"by_step": f"{paths.PLOTS_DIR}/forecast_by_step.png"}
    for key, (series, why) in shown.items():
        report.plot_series(panel.frame, test_rows, future, series, artifact_path(ctx, plots[key]), spec["target"], why)
    bt_rows = pd.read_csv(artifact_path(ctx, BACKTEST_ROWS), dtype={"series": str})
    bt_steps = backtest.breakdown(bt_rows[bt_rows["model"] == ev["model"]], "step")
    report.plot_by_step(ev["by_step"], artifact_path(ctx, plots["by_step"]), bt_steps)
    goal = ctx.answers.get("goal") or f"forecast {spec['target']} {spec['horizon']} steps ahead"
    notes = (read_json(ctx.artifacts_dir / BACKTEST) or {}).get("notes") or []
    text = report.report_md(spec, prof, board, ev, plots, goal, notes, {k: why for k, (_, why) in shown.items()},
                            [why_not] if why_not else [], bt_steps)
    artifact_path(ctx, paths.REPORT).write_text(text)
    artifact_path(ctx, paths.MODEL_CARD).write_text(report.model_card_md(spec, ev))
    session = read_json(ctx.session_dir / "session.json") or {}
    cv_mean = next(r["cv_mean"] for r in board if r["name"] == ev["model"])
    nb = report.notebook(spec, session.get("data_path") or str(ctx.data_path), session.get("data_sha256"), ev["model"], cv_mean,
                         [r["name"] for r in board if r["name"] != "blend"])
    import nbformat

    executed = False
    if execute_notebook:
        from dsagent.tools.notebook_kernel import execute

        execute(nb, str(ctx.artifacts_dir), timeout_cell=max(30.0, ctx.seconds_left()), timeout_total=max(60.0, ctx.seconds_left()))
        executed = True
    nbformat.write(nb, artifact_path(ctx, paths.NOTEBOOK))
    files = {"report": paths.REPORT, "model_card": paths.MODEL_CARD, "notebook": paths.NOTEBOOK, **plots}
    return ToolOutput(summary={"written": list(files.values()), "notebook_executed": executed}, files=files)


def _plotted_series(prof: dict, ev: dict, test_rows: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Plot key -> (series, why it is shown): the largest series and the worst by test-window MASE (one
    plot, saying so, when they are the same series)."""
    largest = prof["series"][0]["series"] if prof.get("series") else test_rows["series"].iloc[0]
    scored = [r for r in ev.get("by_series") or [] if r.get("mase") is not None]
    worst = max(scored, key=lambda r: r["mase"]) if scored else None
    shown = {"largest": (str(largest), "the largest series")}
    if worst is None:
        return shown
    label = f"test MASE {worst['mase']:.2f}"
    if str(worst["series"]) == str(largest):
        return {"largest": (str(largest), f"the largest series, also the worst: {label}")}
    return shown | {"worst": (str(worst["series"]), f"the worst series, {label}")}


def _future(ctx: ToolContext) -> tuple[pd.DataFrame | None, str | None]:
    """The saved model's forecast beyond the data (series, time, yhat and intervals) for the plots, or
    (None, why not): a model with known-future columns needs their values for the horizon."""
    from dsagent.tools.forecast.frequency import series_ids
    from dsagent.tools.forecast.task import predict_from_history
    from dsagent.tools.model_io import load_model

    model, _ = load_model(artifact_path(ctx, paths.MODEL))
    spec = model["spec"]
    if spec.get("known_future_columns"):
        return None, ("The plots show no forecast beyond the data: it needs the known-future column(s) "
                      f"{', '.join(spec['known_future_columns'])} for the horizon (`dsagent predict SESSION HISTORY.csv`).")
    pred = predict_from_history(model)
    out = pred.rename(columns={spec["time_column"]: "time", "prediction": "yhat"})
    out["series"] = series_ids(pred, spec["series_columns"]).to_numpy()
    return out, None
