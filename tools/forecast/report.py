"""The forecast's deliverables: the report section (history + forecast + intervals of the largest
and the worst series, error by horizon step, the baselines), the model card's limits, and a notebook that
re-creates the backtest from the raw data with the same library calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def _f(v: Any, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def plot_series(history: pd.DataFrame, test_rows: pd.DataFrame, future: pd.DataFrame | None, series: str, path: Path,
                target: str, why: str) -> str:
    """One series: its history, the test-window forecast against the actuals, and the forecast beyond the
    data (the saved model's, when it can make one without known-future values), each with 80% and 95%
    intervals."""
    from dsagent.tools.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    h = history[history["series"] == series]
    ax.plot(h["time"], h["y"], color="black", lw=1, label="history (actual)")
    parts = [(test_rows, "tab:blue", "test-window forecast")]
    if future is not None:
        parts.append((future, "tab:green", "forecast beyond the data"))
    for rows, color, label in parts:
        t = rows[rows["series"] == series].sort_values("time")
        ax.fill_between(t["time"], t["lower_95"], t["upper_95"], alpha=0.15, color=color, lw=0)
        ax.fill_between(t["time"], t["lower_80"], t["upper_80"], alpha=0.3, color=color, lw=0)
        ax.plot(t["time"], t["yhat"], color=color, lw=1.5, label=f"{label} (80% / 95% intervals)")
    ax.set(title=f"{target}: series {series} ({why})", xlabel="time", ylabel=target)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_by_step(by_step: list[dict[str, Any]], path: Path, backtest_by_step: list[dict[str, Any]] | None = None) -> str:
    """Test-window MASE per step ahead (bars), with the backtest windows' MASE per step (a line): whether
    the test window was a typical one, and how fast the error grows with the horizon."""
    from dsagent.tools.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar([r["step"] for r in by_step], [r["mase"] for r in by_step], color="tab:orange", label="test window")
    if backtest_by_step:
        ax.plot([r["step"] for r in backtest_by_step], [r["mase"] for r in backtest_by_step], color="black", marker="o",
                lw=1, label="backtest windows (mean)")
    ax.axhline(1.0, color="grey", ls="--", lw=1, label="in-sample seasonal naive (MASE 1)")
    top = max([1.0] + [r["mase"] for r in [*by_step, *(backtest_by_step or [])] if r["mase"] is not None])
    ax.set_ylim(0, top * 1.5)  # room above the bars and the MASE-1 line for the legend
    ax.set_xticks([r["step"] for r in by_step])
    ax.set(title="Error by horizon step", xlabel="steps ahead", ylabel="MASE")
    ax.legend(fontsize=8, loc="upper left")
    return _save(fig, path)


def report_md(task: dict[str, Any], profile: dict[str, Any], board: list[dict[str, Any]], ev: dict[str, Any],
              plots: dict[str, str], goal: str, backtest_notes: list[str] | None = None,
              series_plots: dict[str, str] | None = None, plot_notes: list[str] | None = None,
              backtest_by_step: list[dict[str, Any]] | None = None) -> str:
    """The report; `series_plots` is plot key -> which series it shows (the largest, the worst by test MASE)."""
    series_plots, plot_notes = series_plots or {"largest": "the largest series"}, plot_notes or []
    lines = [f"# Forecast report: {task['target']}", "", f"**Goal:** {goal}", "",
             "## Data", "",
             f"- {task['n_series']} series ({', '.join(task['series_columns']) or 'one series'}), frequency **{task['frequency']}** "
             f"(seasonal period {task['period']}), {task['n_times']} time steps.",
             f"- Horizon: **{task['horizon']} steps**; {task['split']['windows']} rolling-origin backtest windows of "
             f"{task['horizon']} steps; the test window ({task['split']['test_window'][0]} to {task['split']['test_window'][1]}) "
             "was not read until evaluation.",
             f"- Median seasonal strength {_f(profile.get('median_seasonal_strength'))}; "
             f"{profile.get('intermittent_series', 0)} intermittent series (over 30% zeros)."]
    lines += [f"- {n}" for n in task.get("notes", []) + task.get("assumptions", [])]
    lines += ["", "## Backtest (mean over windows; MASE is the default metric, lower is better)", "",
              "| model | MASE | MASE std | sMAPE % | MAE | RMSE | MAPE % |", "|---|---|---|---|---|---|---|"]
    for r in board:
        lines.append(f"| {r['name']} | {_f(r['cv_mean'])} | {_f(r['cv_std'])} | {_f(r.get('bt_smape'), 2)} | {_f(r.get('bt_mae'))} "
                     f"| {_f(r.get('bt_rmse'))} | {_f(r.get('bt_mape'), 2)} |")
    lines += [""] + [f"- blend = mean of {', '.join(r['members'])} (the models, not the baselines, within 1.5x of the best "
                     "model's backtest MASE): chosen whenever it exists, as the single best of a few windows is largely the "
                     "luckiest" for r in board if r.get("members")]
    lines += [f"- {r['name']}: {r['fell_back']}" for r in board if r.get("fell_back")] + [f"- {n}" for n in backtest_notes or []]
    m = ev["test_metrics"]
    lines += ["", "## Test window", "",
              f"Chosen model **{ev['model']}**: MASE {_f(m['mase'])} against the seasonal naive's {_f(ev['baseline_score'])}; "
              f"sMAPE {_f(m['smape'], 2)}%, MAE {_f(m['mae'])}, RMSE {_f(m['rmse'])}, "
              + (f"MAPE {_f(m['mape'], 2)}%." if m.get("mape") is not None else f"MAPE not reported ({m.get('mape_refused')})."),
              "", "| model | test MASE | test sMAPE % |", "|---|---|---|"]
    lines += [f"| {n} | {_f(s['mase'])} | {_f(s['smape'], 2)} |" for n, s in ev["test_by_model"].items()]
    if ev.get("not_scored_on_test"):
        lines += ["", f"Not scored on the test window, for lack of time: {', '.join(ev['not_scored_on_test'])}."]
    cov_t, cov_b = ev["coverage_test"], ev["coverage_backtest"]
    lines += ["", "## Prediction intervals", "",
              "Conformal, per horizon step, from the backtest errors scaled by each series' recent seasonal swing "
              "(floored at the Gaussian width: a few windows under-state the tails).",
              f"Empirical coverage: 80% interval {_f(cov_b.get('80'), 2)} on the backtests (leave one window out), "
              f"{_f(cov_t.get('80'), 2)} on the test window; 95% interval {_f(cov_b.get('95'), 2)} and {_f(cov_t.get('95'), 2)}.",
              *_consistency_line(ev.get("coverage_test_check")),
              ""]
    lines += [f"![history, forecast and intervals: {why}]({plots[key]})\n" for key, why in series_plots.items()]
    lines += [f"- {n}" for n in plot_notes] + ([""] if plot_notes else [])
    lines += ["## Error by horizon step", "", "| step | test MASE | test sMAPE % | backtest MASE |", "|---|---|---|---|"]
    bt = {r["step"]: r["mase"] for r in backtest_by_step or []}
    lines += [f"| {r['step']} | {_f(r['mase'])} | {_f(r['smape'], 2)} | {_f(bt.get(r['step']))} |" for r in ev["by_step"]]
    worst = sorted(ev["by_series"], key=lambda r: -(r["mase"] or 0))[:5]
    lines += ["", f"![error by horizon step]({plots['by_step']})", "", "## Worst series (test MASE)", "",
              "| series | MASE | sMAPE % |", "|---|---|---|"]
    lines += [f"| {r['series']} | {_f(r['mase'])} | {_f(r['smape'], 2)} |" for r in worst]
    return "\n".join(lines) + "\n"


def _consistency_line(check: dict[str, Any] | None) -> list[str]:
    """What the test window's coverage can tell: few points give coarse shares, so say whether the hits
    are what intervals at their stated level would give (two-sided binomial test)."""
    if not check or not check.get("95"):
        return []
    parts = [f"{check[lv]['hits']} of {check['n']} inside the {lv}% interval (binomial p = {check[lv]['p_value']:.2f})"
             for lv in ("80", "95")]
    ok = all(check[lv]["p_value"] >= 0.05 for lv in ("80", "95"))
    return [f"On the test window: {'; '.join(parts)}: " + ("consistent with the stated levels." if ok else
            "not what intervals at the stated levels would give (p < 0.05); trust the backtest coverage less.")]


def model_card_md(task: dict[str, Any], ev: dict[str, Any]) -> str:
    return "\n".join([
        f"# Model card: {task['target']} forecast", "",
        f"- **Model:** {ev['model']} ({', '.join(ev['test_by_model'])} were compared by rolling-origin backtest; the global "
        "gradient-boosted model is direct multi-step with the step as a feature, ETS/Theta/ARIMA are fit per series).",
        f"- **Trained for:** {task['horizon']} steps ahead of {task['frequency']} data, {task['n_series']} series.",
        f"- **Test window MASE:** {_f(ev['test_score'])} (seasonal naive {_f(ev['baseline_score'])}).", "",
        "## Do not use it for", "",
        f"- Horizons beyond {task['horizon']} steps: neither the model nor its intervals were trained or checked there "
        "(`dsagent predict` and `dsagent serve`'s POST /forecast refuse them).",
        "- New series with no history: every forecast is built from the series' own recent past.",
        "- Data at another frequency, or a history with duplicated timestamps.",
        "- Periods after a structural break (new product, pricing change, pandemic): backtests measure the past only.",
        "", "## Limits of this version", "",
        (f"- Known-future columns {', '.join(task['known_future_columns'])} are same-time features: `dsagent predict` needs "
         "their values for every step of the horizon, and a wrong value there moves the forecast."
         if task.get("known_future_columns") else "- No known-future covariates (price, holidays) were given: the target's own "
         "past, the calendar and the past-only columns only."),
        f"- Past-only columns (used through their values up to the origin): {', '.join(task.get('past_columns') or []) or 'none'}.",
        "- ETS, Theta and ARIMA use the target alone; they run per series only when series are few.",
        "- Intervals assume future errors look like the backtest errors at the same step.", ""])


def notebook(task: dict[str, Any], data_path: str, sha256: str | None, chosen: str, cv_mean: float,
             names: list[str] | None = None) -> Any:
    """A notebook that re-creates the backtest: load the raw file (checking its sha256), rebuild the
    panel and the rolling-origin windows with the same library, and assert the chosen model's MASE."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    spec = {k: task[k] for k in ("target", "time_column", "series_columns", "horizon")} | {"frequency": task["frequency"]}
    cells = [
        new_markdown_cell(f"# Backtest of the {task['target']} forecast\n\nRe-creates the rolling-origin backtest of the dsagent "
                          f"session from the raw data: {task['split']['windows']} windows of {task['horizon']} steps before the "
                          "untouched test window, the same candidates, and checks the chosen model's backtest MASE. "
                          "It needs the `dsagent` package (its forecasting library builds the features and models)."),
        new_code_cell("import hashlib\nfrom dsagent.tools.data import load_table\n"
                      f"DATA = {data_path!r}\n"
                      + (f"assert hashlib.sha256(open(DATA, 'rb').read()).hexdigest() == {sha256!r}, 'the data file changed'\n" if sha256 else "")
                      + "df, _ = load_table(DATA)\ndf.shape"),
        new_code_cell("from dsagent.tools.forecast.task import ForecastSpec, ForecastTask\n"
                      f"task = ForecastTask(ForecastSpec(**{spec!r}))\nspec, panel = task.define(df)\nspec['split']"),
        new_code_cell(f"results = task.backtest(panel, only={names!r})  # the models the session backtested\n"
                      "import pandas as pd\npd.DataFrame(task.leaderboard(results))"),
        new_code_cell(f"assert abs(results['models'][{chosen!r}]['cv_mean'] - {cv_mean!r}) < 1e-6, 'backtest differs from the session'\n"
                      f"results['models'][{chosen!r}]['mase_windows']"),
    ]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb
