"""write_report: report.md (with relative links to the PNG plots beside it) and model_card.md,
built from the session's records — business framing, data quality, leaderboard vs baseline, test
metrics with CIs, segments, errors, trade-offs, limitations and a reproducibility block."""

from __future__ import annotations

import json
from typing import Any

from tools import paths
from tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, tool


def _load(ctx: ToolContext, name: str) -> dict[str, Any] | list[Any]:
    p = ctx.artifacts_dir / name
    return json.loads(p.read_text()) if p.exists() else {}


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _md_cell(v: Any) -> str:
    # Data values are quoted and escaped so a cell cannot inject markdown/HTML into the report.
    return str(v).replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")[:60]


def _section_data(profile: dict[str, Any], task: dict[str, Any]) -> list[str]:
    out = ["## Data", ""]
    if profile:
        out.append(f"- {profile.get('n_rows')} rows x {profile.get('n_cols')} columns; "
                   f"{profile.get('duplicate_rows', 0)} duplicate rows.")
        load = profile.get("load") or {}
        if load.get("notes"):
            out.append("- Reading the file: " + "; ".join(map(str, load["notes"][:5])))
        missing = sorted((c for c in profile.get("columns", []) if c.get("missing_frac", 0) > 0),
                         key=lambda c: -c["missing_frac"])[:8]
        if missing:
            out.append("- Missing values: " + ", ".join(f"`{_md_cell(c['name'])}` {c['missing_frac']:.0%}" for c in missing))
        for w in (profile.get("warnings") or [])[:8]:
            out.append(f"- {w}")
    if task.get("dropped"):
        out.append("- Left out of the features: " + ", ".join(f"`{_md_cell(d['column'])}` ({d['reason']})" for d in task["dropped"]))
    for note in task.get("notes", []):
        out.append(f"- {note}")
    return out + [""]


@tool
def write_report(ctx: ToolContext) -> ToolOutput:
    """Write report.md and model_card.md from the session's results: business framing from the
    answers, data quality findings, leaderboard vs baseline, test metrics with confidence
    intervals, plots, feature importance, worst segments, trade-offs, limitations and assumptions,
    and a reproducibility block (data sha256, library versions, seed, hyperparameters)."""
    task = _load(ctx, paths.TASK)
    ev = _load(ctx, paths.EVALUATION)
    if not task or not ev:
        raise ToolError("define_task and evaluate_model must run before write_report")
    profile = _load(ctx, paths.PROFILE)
    board = _load(ctx, paths.LEADERBOARD) or []
    expl = _load(ctx, paths.EXPLANATION)
    session = json.loads((ctx.session_dir / "session.json").read_text()) if (ctx.session_dir / "session.json").exists() else {}
    answers = ctx.answers
    metric = ev["metric"]
    better = "higher" if ev["greater_is_better"] else "lower"
    ci = ev.get("test_ci")
    lift = ev["test_score"] - ev["baseline_score"]
    goal = answers.get("goal") or f"predict {task['target']}"

    lines = [f"# Report: {goal}", ""]
    lines += ["## Summary", "",
              f"- Task: {task['task']} prediction of `{task['target']}`" +
              (f" (positive class `{task['positive_class']}`)" if task.get("positive_class") else "") + ".",
              f"- Chosen model: **{ev['model']}** ({ev['family']}).",
              f"- Test {metric}: **{_fmt(ev['test_score'])}**" + (f" (95% bootstrap CI {_fmt(ci[0])} to {_fmt(ci[1])})" if ci else "")
              + f" on {ev['n_test']} held-out rows; {better} is better.",
              f"- Baseline ({'class prior' if task['task'] != 'regression' else 'training mean'}): {_fmt(ev['baseline_score'])} "
              f"-> the model {'improves' if (lift > 0) == ev['greater_is_better'] else 'does NOT improve'} on it by {_fmt(abs(lift))}.",
              f"- Cross-validated {metric} on the training split: {_fmt(ev['cv_mean'])} ± {_fmt(ev['cv_std'])}.", ""]
    lines += ["## Business framing", ""]
    lines.append(f"- Goal: {goal}.")
    if answers.get("cost_fp") is not None or answers.get("cost_fn") is not None:
        lines.append(f"- Stated costs: false positive {answers.get('cost_fp', 'n/a')}, false negative {answers.get('cost_fn', 'n/a')}.")
    if answers.get("latency_ms"):
        p95 = ev.get("latency", {}).get("single_row_ms", {}).get("p95")
        lines.append(f"- Latency requirement {answers['latency_ms']} ms per prediction; measured single-row p95 {p95} ms.")
    if answers.get("interpretability"):
        lines.append(f"- Interpretability need: {answers['interpretability']}.")
    lines.append("")
    lines += _section_data(profile, task)
    lines += ["## Models compared (cross-validation on the training split)", "",
              f"| model | CV {metric} mean | CV std | fit s |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {_fmt(r['cv_mean'])} | {_fmt(r['cv_std'])} | {r['fit_s']} |" for r in board[:10]]
    lines += ["", "## Test results", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in ev.get("test_metrics", {}).items()]
    if ev.get("threshold"):
        th = ev["threshold"]
        lines += ["", f"Decision threshold **{th['threshold']:.4f}**: {th['rule']}. At this threshold on the test split: "
                  + ", ".join(f"{k} {_fmt(v)}" for k, v in th.get("test_metrics_at_threshold", {}).items()) + "."]
    lines.append("")
    for label, rel in (ev.get("files") or {}).items():
        if rel.endswith(".png"):
            lines.append(f"![{label.replace('_', ' ')}]({rel})")
    lines.append("")
    if expl:
        lines += ["## What drives the predictions", "", "| feature | permutation importance | std |", "|---|---|---|"]
        lines += [f"| {_md_cell(r['feature'])} | {_fmt(r['importance'])} | {_fmt(r['std'])} |" for r in expl["permutation_importance"][:12]]
        lines += ["", f"![permutation importance]({paths.PLOTS_DIR}/permutation_importance.png)", ""]
        if expl.get("shap_mean_abs"):
            lines += [f"![SHAP importance]({paths.PLOTS_DIR}/shap_importance.png)", ""]
        lines += ["Importance measures association with the model's predictions, not causation; correlated columns share it.", ""]
    lines += ["## Where the model fails", ""]
    if ev.get("worst_segments"):
        lines += ["| column | value | rows | mean loss | x overall |", "|---|---|---|---|---|"]
        lines += [f"| {_md_cell(w['column'])} | {_md_cell(w['value'])} | {w['n']} | {_fmt(w['mean_loss'])} | {w['ratio_to_overall']} |"
                  for w in ev["worst_segments"]]
    else:
        lines.append("No segment with enough rows stands out.")
    lines.append("")
    for col, rows in (ev.get("segments") or {}).items():
        lines += [f"### Segments of `{_md_cell(col)}`", "", f"| value | rows | {metric} | mean loss |", "|---|---|---|---|"]
        lines += [f"| {_md_cell(r['value'])} | {r['n']} | {_fmt(r.get(metric))} | {_fmt(r['mean_loss'])} |" for r in rows]
        lines.append("")
    lines += ["## Trade-offs", ""]
    simple = next((r for r in board if r["family"] == "linear"), None)
    if simple:
        gap = ev["cv_mean"] - simple["cv_mean"]
        lines.append(f"- A linear model reaches CV {metric} {_fmt(simple['cv_mean'])} vs {_fmt(ev['cv_mean'])} for the chosen "
                     f"model (difference {_fmt(abs(gap))}). It is easier to explain and faster; prefer it if that gap "
                     "does not matter for the decision this model supports.")
    lat = ev.get("latency", {})
    if lat:
        lines.append(f"- Prediction latency: single row p50 {lat['single_row_ms']['p50']} ms, p95 {lat['single_row_ms']['p95']} ms; "
                     f"{lat['batch_rows']} rows in {lat['batch_ms']} ms.")
    lines += ["", "## Limitations and assumptions", ""]
    for a in session.get("assumptions", []) or []:
        lines.append(f"- Assumption: {a}")
    lines += [f"- The test split has {ev['n_test']} rows; the CI above shows how much the score could move on new data.",
              "- Performance holds only for data like the training data; monitor drift (see monitoring.md).", ""]
    lines += ["## Reproducibility", "", "```",
              f"data:       {session.get('data_path')}", f"sha256:     {session.get('data_sha256')}",
              f"seed:       {ctx.seed}", f"split:      {json.dumps(task['split'])}",
              f"model:      {ev['family']} {json.dumps(ev['params'], default=str)}",
              "versions:   " + ", ".join(f"{k} {v}" for k, v in (session.get("versions") or {}).items()),
              "```", "", "Re-create the model with notebook.ipynb.", ""]
    report_text = "\n".join(lines)
    artifact_path(ctx, paths.REPORT).write_text(report_text, encoding="utf-8")
    card = model_card(ctx, task, ev, answers, session)
    artifact_path(ctx, paths.MODEL_CARD).write_text(card, encoding="utf-8")
    return ToolOutput(summary={"report": paths.REPORT, "model_card": paths.MODEL_CARD, "report_chars": len(report_text)},
                      record=None, files={"report": paths.REPORT, "model_card": paths.MODEL_CARD})


def model_card(ctx: ToolContext, task: dict[str, Any], ev: dict[str, Any], answers: dict[str, Any],
               session: dict[str, Any]) -> str:
    ci = ev.get("test_ci")
    sensitive = answers.get("sensitive_columns") or []
    lines = [f"# Model card: {ev['model']} predicting `{task['target']}`", "",
             "## Intended use", "", f"- {answers.get('goal') or 'Predict ' + task['target']} on rows shaped like the training data "
             f"(the same {len(task['features'])} input columns).",
             "- Decision support with a human able to override; re-check the threshold against current costs.", "",
             "## Out-of-scope use", "", "- Data from another population, period or source than the training data.",
             "- Decisions about individuals without review, or uses the training data cannot support (causal claims).", "",
             "## Training data", "", f"- File `{session.get('data_path')}` (sha256 {session.get('data_sha256')}).",
             f"- {task['n_train']} training rows, {task['n_test']} test rows, {task['split']['kind']} split.", "",
             "## Metrics (untouched test split)", "",
             f"- {ev['metric']}: {_fmt(ev['test_score'])}" + (f" (95% CI {_fmt(ci[0])} to {_fmt(ci[1])})" if ci else ""),
             f"- baseline: {_fmt(ev['baseline_score'])}", ""]
    lines += ["## Performance across segments", ""]
    if ev.get("segments"):
        for col, rows in ev["segments"].items():
            tag = " (sensitive attribute: check for unequal error rates)" if col in sensitive else ""
            lines.append(f"- `{_md_cell(col)}`{tag}: " + "; ".join(f"{_md_cell(r['value'])}: {_fmt(r.get(ev['metric']))} (n={r['n']})"
                                                                     for r in rows[:8]))
    else:
        lines.append("- No segment or sensitive columns were named; fairness across groups was not assessed.")
    lines += ["", "## Caveats", "",
              "- Confidence intervals come from bootstrapping the test rows; they do not cover drift.",
              "- Feature importance is associational.",
              "- Retrain or investigate when monitoring.md's triggers fire.", ""]
    return "\n".join(lines)
