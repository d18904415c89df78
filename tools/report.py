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
import math
import platform
import re
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.business import use_lines
from dsagent.tools.fairness import fairness_md
from dsagent.tools import paths, plots
from dsagent.tools.fallback import card_lines as fallback_card
from dsagent.tools.markdown import md_cell
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, read_json, tool
from dsagent.tools.schemas import Evaluation, Explanation, Leaderboard, TaskSpec
from dsagent.tools.task_types import get_task_type, prediction_of

INTERPRETABILITY = {"baseline": "trivial", "linear": "high (one coefficient per encoded feature)",
                    "random_forest": "low (hundreds of trees; use importance/SHAP)", "extra_trees": "low (hundreds of trees)",
                    "hist_gb": "low (boosted trees)", "xgboost": "low (boosted trees; SHAP available)",
                    "mlp": "low (a neural network; read it through permutation importance)",
                    "ensemble": "low (a blend of several models)"}


def _load(ctx: ToolContext, name: str) -> Any:
    return read_json(ctx.artifacts_dir / name, {})


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, (float, np.floating)):
        return f"{v:.{digits}f}"
    return str(v)


def _pct(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.1%}"


def _slug(v: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", str(v))[:40] or "column"


# -- numbers computed from the saved test predictions ---------------------------------------
class TestView:
    """The held-out rows, their labels and the saved model's predictions on them."""

    def __init__(self, ctx: ToolContext, task: dict[str, Any], ev: dict[str, Any]):
        from dsagent.tools.data import load_dataset
        from dsagent.tools.task import encode_target

        saved = np.load(ctx.artifacts_dir / "test_predictions.npz")
        self.pred = np.asarray(saved["pred"])
        self.proba = np.asarray(saved["proba"]) if saved["proba"].size else None
        df, _ = load_dataset(ctx)
        self.frame = df.iloc[task["test_rows"]].reset_index(drop=True)
        self.y = encode_target(task, self.frame[task["target"]])
        self.task = task
        threshold = (ev.get("threshold") or {}).get("threshold")
        self.decision = (self.proba[:, 1] >= threshold).astype(int) if threshold is not None and self.proba is not None else self.pred
        if len(self.y) != len(self.pred):
            raise ToolError("test_predictions.npz does not match the test split; run evaluate_model again")


def _fit_rows_text(ev: dict[str, Any]) -> str:
    fit_rows, n_train = ev.get("fit_rows") or ev["n_train"], ev["n_train"]
    if fit_rows >= n_train:
        return f"{n_train} rows"
    grown = ev.get("grown")
    if grown:
        return (f"{fit_rows} of the {n_train} training rows; {grown['es_rows']} other training rows decided when to stop "
                f"boosting: {grown['rounds']} rounds at learning rate {grown['learning_rate']:g} (the search, on a small "
                f"subsample, had stopped at {grown['search_rounds']} rounds at learning rate "
                f"{grown['search_learning_rate']:g}; more rows support more boosting, and a larger step when time is short)")
    return (f"a fixed subsample of {fit_rows} of the {n_train} training rows (a fit on every row did not fit the "
            "time budget; a larger --time-budget uses more of them)")


def _metric_cis(view: TestView, ev: dict[str, Any], seed: int) -> dict[str, tuple[float, float] | None]:
    from dsagent.tools.metrics import bootstrap_ci, task_metrics

    out: dict[str, tuple[float, float] | None] = {}
    known = task_metrics(view.task["task"])
    for name in ev.get("test_metrics", {}):
        if name == ev["metric"] and ev.get("test_ci"):
            out[name] = tuple(ev["test_ci"])
            continue
        metric = known.get(name)
        if metric is None:
            continue
        try:
            out[name] = bootstrap_ci(metric, view.y, view.pred, view.proba, n=200, seed=seed, time_limit=1.0)
        except Exception:
            out[name] = None
    return out


def group_table(view: TestView, column: str, metric_name: str) -> list[dict[str, Any]]:
    """Per value of `column`: rows, the main metric and error rates (fairness view)."""
    from dsagent.tools.metrics import score, task_metrics

    values = view.frame[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 10:
        values = pd.qcut(values, 4, duplicates="drop").astype(str)
    values = values.astype(object).where(values.notna(), "(missing)").astype(str).to_numpy()
    metric = task_metrics(view.task["task"])[metric_name]
    rows = []
    for val in pd.Series(values).value_counts().index[:12]:
        m = values == val
        row: dict[str, Any] = {"value": str(val), "n": int(m.sum())}
        try:
            row[metric_name] = score(metric, view.y[m], view.pred[m], None if view.proba is None else view.proba[m])
        except (ValueError, IndexError):
            row[metric_name] = None
        if prediction_of(view.task["task"]) == "regression":
            resid = view.y[m] - view.pred[m]
            row["mae"] = float(np.abs(resid).mean())
            row["mean_residual"] = float(resid.mean())
        else:
            row["accuracy"] = float((view.decision[m] == view.y[m]).mean())
            if prediction_of(view.task["task"]) == "binary":
                pos, neg = view.y[m] == 1, view.y[m] == 0
                row["selection_rate"] = float(view.decision[m].mean())
                row["tpr"] = float(view.decision[m][pos].mean()) if pos.any() else None
                row["fpr"] = float(view.decision[m][neg].mean()) if neg.any() else None
        rows.append(row)
    return rows


def _gap(rows: list[dict[str, Any]], key: str, min_n: int = 10) -> tuple[float, str, str] | None:
    vals = [(r[key], r["value"]) for r in rows if r.get(key) is not None and r["n"] >= min_n]
    if len(vals) < 2:
        return None
    hi, lo = max(vals), min(vals)
    return hi[0] - lo[0], hi[1], lo[1]


def _group_md(rows: list[dict[str, Any]], metric: str, task: str) -> list[str]:
    if task == "regression":
        head = f"| value | rows | {metric} | MAE | mean residual (actual - predicted) |"
        body = [f"| {md_cell(r['value'])} | {r['n']} | {_fmt(r.get(metric))} | {_fmt(r['mae'])} | {_fmt(r['mean_residual'])} |" for r in rows]
        sep = "|---|---|---|---|---|"
    elif task == "binary":
        head = f"| value | rows | {metric} | accuracy | selection rate | true positive rate | false positive rate |"
        body = [f"| {md_cell(r['value'])} | {r['n']} | {_fmt(r.get(metric))} | {_pct(r['accuracy'])} | {_pct(r['selection_rate'])} "
                f"| {_pct(r['tpr'])} | {_pct(r['fpr'])} |" for r in rows]
        sep = "|---|---|---|---|---|---|---|"
    else:
        head = f"| value | rows | {metric} | accuracy |"
        body = [f"| {md_cell(r['value'])} | {r['n']} | {_fmt(r.get(metric))} | {_pct(r['accuracy'])} |" for r in rows]
        sep = "|---|---|---|---|"
    return [head, sep, *body]


# -- sections --------------------------------------------------------------------------------
def _section_business(answers: dict[str, Any], task: dict[str, Any], ev: dict[str, Any], goal: str,
                      view: TestView | None) -> list[str]:
    out = ["## Business framing", "", f"- **Goal:** {md_cell(goal, 300)}."]
    if prediction_of(task["task"]) == "binary":
        cfp, cfn = answers.get("cost_fp"), answers.get("cost_fn")
        th = ev.get("threshold") or {}
        if cfp is not None or cfn is not None:
            out.append(f"- **Costs of mistakes:** a false positive costs {cfp if cfp is not None else 'n/a'}, a missed "
                       f"positive {cfn if cfn is not None else 'n/a'}; the decision threshold is set from them.")
        else:
            out.append("- **Costs of mistakes:** not stated, so false positives and misses are weighed equally (F1).")
        at = th.get("test_metrics_at_threshold") or {}
        if th and at:
            out.append(f"- **What it means in practice:** flagging rows with P(`{md_cell(task['positive_class'])}`) >= "
                       f"{th['threshold']:.3f} finds {_pct(at.get('recall'))} of the actual positives, and "
                       f"{_pct(at.get('precision'))} of the flagged rows are right (test split).")
        if view is not None:
            fp = int(((view.decision == 1) & (view.y == 0)).sum())
            fn = int(((view.decision == 0) & (view.y == 1)).sum())
            out.append(f"- On the {len(view.y)} test rows that is {fp} false positive(s) and {fn} miss(es)"
                       + (f", a cost of {fp * (cfp or 1):g} + {fn * (cfn or 1):g} = {fp * (cfp or 1) + fn * (cfn or 1):g}"
                          if cfp is not None or cfn is not None else "") + ".")
    elif prediction_of(task["task"]) == "regression":
        mae = ev.get("test_metrics", {}).get("mae")
        if mae is not None:
            out.append(f"- **What it means in practice:** a typical prediction is off by about {_fmt(mae, 2)} "
                       f"(mean absolute error, in the units of `{md_cell(task['target'])}`).")
    else:
        acc = ev.get("test_metrics", {}).get("accuracy")
        if acc is not None:
            out.append(f"- **What it means in practice:** {_pct(acc)} of test rows get the right class; "
                       "the probabilities say how sure each call is.")
    lat = ((ev.get("latency") or {}).get("single_row_ms") or {})
    if answers.get("latency_ms"):
        ok = lat.get("p95") is not None and lat["p95"] <= answers["latency_ms"]
        out.append(f"- **Latency:** required {answers['latency_ms']} ms per prediction; measured single-row p95 "
                   f"{lat.get('p95')} ms ({'meets' if ok else 'MISSES'} it).")
    out += use_lines(answers, ev)  # what latency, volume, min useful score, baseline and cadence changed
    if answers.get("interpretability"):
        out.append(f"- **Interpretability need:** {answers['interpretability']}; the chosen family's is "
                   f"{INTERPRETABILITY.get(ev['family'], 'unknown')}.")
    return out + [""]


def _section_data(profile: dict[str, Any], task: dict[str, Any]) -> list[str]:
    out = ["## Data quality findings", ""]
    if profile:
        out.append(f"- {profile.get('n_rows')} rows x {profile.get('n_cols')} columns; "
                   f"{profile.get('duplicate_rows', 0)} exact duplicate rows"
                   + (f"; duplicate columns: {', '.join(map(md_cell, profile['duplicate_columns'][:5]))}"
                      if profile.get("duplicate_columns") else "") + ".")
        load = profile.get("load") or {}
        if load.get("notes"):
            out.append("- Reading the file: " + "; ".join(md_cell(n, 200) for n in load["notes"][:5]))
        missing = sorted((c for c in profile.get("columns", []) if c.get("missing_frac", 0) > 0),
                         key=lambda c: -c["missing_frac"])[:8]
        if missing:
            out.append("- Missing values: " + ", ".join(f"`{md_cell(c['name'])}` {c['missing_frac']:.1%}" for c in missing)
                       + " (imputed inside the Pipeline, with missing-value indicators for numbers missing in at least 5 "
                       "training rows).")
        else:
            out.append("- No missing values.")
        tgt = profile.get("target") or {}
        if tgt.get("class_counts"):
            out.append("- Target balance: " + ", ".join(f"`{md_cell(k)}` {v}" for k, v in list(tgt["class_counts"].items())[:10]) + ".")
        # Leakage warnings get their own lines below, which also say whether the column was kept.
        for w in [w for w in profile.get("warnings") or [] if not str(w).startswith("leakage suspect:")][:8]:
            out.append(f"- {md_cell(w, 300)}")
        left_out = {d["column"] for d in task.get("dropped") or []}
        for s in (profile.get("leakage_suspects") or [])[:5]:
            col = s.get("column", s) if isinstance(s, dict) else s
            if col in left_out:
                out.append(f"- Possible leak: `{md_cell(col)}` predicts the target almost perfectly on its own; it was "
                           "left out of the features. If it is known at prediction time, it can go back in.")
            else:
                out.append(f"- Possible leak: `{md_cell(col)}` predicts the target strongly on its own; it was kept as "
                           "a feature. Check that it is known at prediction time (to leave it out, list it under "
                           "`id_columns` in an answers file).")
    if task.get("dropped"):
        out.append("- Left out of the features: " + ", ".join(f"`{md_cell(d['column'])}` ({md_cell(d['reason'], 100)})"
                                                              for d in task["dropped"]) + ".")
    for note in task.get("notes", []):
        out.append(f"- {md_cell(note, 300)}")
    return out + [""]


def _section_tradeoffs(board: list[dict[str, Any]], ev: dict[str, Any]) -> list[str]:
    out = ["## Trade-offs", "", "| candidate | interpretability | CV score | fit s | predict ms / 1k rows |", "|---|---|---|---|---|"]
    for r in board[:8]:
        out.append(f"| {md_cell(r['name'])}{' (chosen)' if r['name'] == ev['model'] else ''} | "
                   f"{INTERPRETABILITY.get(r['family'], '?')} | {_fmt(r['cv_mean'])} ± {_fmt(r['cv_std'])} | {r.get('fit_s', '')} | "
                   f"{r.get('predict_ms_per_1k', '')} |")
    out.append("")
    chosen = next((r for r in board if r["name"] == ev["model"]), None)
    simpler = [r for r in board if r["family"] == "linear" and r["name"] != ev["model"]]
    complex_ = [r for r in board if r["family"] not in ("linear", "baseline") and r["name"] != ev["model"]]
    if chosen and ev["family"] != "linear" and simpler:
        s = simpler[0]
        gap = abs(chosen["cv_mean"] - s["cv_mean"])
        noise = max(chosen["cv_std"], s["cv_std"])
        out.append(f"- The best linear model ({md_cell(s['name'])}) reaches CV {_fmt(s['cv_mean'])} vs {_fmt(chosen['cv_mean'])}: "
                   f"a gap of {_fmt(gap)}, {'within' if gap <= noise else 'larger than'} the fold-to-fold spread ({_fmt(noise)}). "
                   + ("It is easier to explain and cheaper to run; prefer it when explanations matter." if gap <= noise else
                      "The extra accuracy is real; keep the linear model as a fallback where explanations are required."))
    elif chosen and ev["family"] == "linear":
        if complex_:
            c = complex_[0]
            out.append(f"- The chosen model is linear: the most interpretable family here. The best tree ensemble "
                       f"({md_cell(c['name'])}) scored CV {_fmt(c['cv_mean'])} vs {_fmt(chosen['cv_mean'])}, so the extra "
                       "complexity did not pay.")
        else:
            out.append("- The chosen model is linear, the most interpretable family; no tree ensemble finished within the "
                       "time budget, so a more complex model might still do better with more time.")
    lat = ev.get("latency") or {}
    if lat.get("single_row_ms"):
        out.append(f"- Prediction latency (this machine): single row p50 {lat['single_row_ms']['p50']} ms, "
                   f"p95 {lat['single_row_ms']['p95']} ms; {lat['batch_rows']} rows in {lat['batch_ms']} ms.")
    return out + [""]


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
    from dsagent.tools.engineer import derived_markdown

    lines += derived_markdown(ctx.artifacts_dir)

    lines += ["## Models compared (cross-validation on the training split)", "",
              f"| model | family | CV {metric} mean | CV std | vs baseline | fit s |", "|---|---|---|---|---|---|"]
    base = next((r for r in board if r["family"] == "baseline"), None)
    for r in board[:10]:
        delta = "" if base is None or r is base else f"{(r['cv_mean'] - base['cv_mean']) * (1 if ev['greater_is_better'] else -1):+.4f}"
        lines.append(f"| {md_cell(r['name'])}{' (chosen)' if r['name'] == ev['model'] else ''} | {r['family']} | "
                     f"{_fmt(r['cv_mean'])} | {_fmt(r['cv_std'])} | {delta} | {r.get('fit_s', '')} |")
    lines += ["", "\"vs baseline\" is the improvement over the baseline in the metric's better direction.", ""]

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
    if prediction_of(task["task"]) == "multiclass" and view is not None and view.proba is not None:
        rel = f"{paths.PLOTS_DIR}/multiclass_curves.png"
        try:
            plots.multiclass_curves(view.y, view.proba, task["classes"], artifact_path(ctx, rel))
            files["multiclass_curves"] = rel
            lines += [f"![ROC per class and calibration]({rel})", ""]
        except ValueError:
            pass

    if expl:
        lines += ["## What drives the predictions", "",
                  f"Permutation importance on the test split: how much {expl.get('scoring') or metric} worsens when one "
                  "column is shuffled (mean ± std over repeats).", "",
                  "| feature | importance | std |", "|---|---|---|"]
        lines += [f"| {md_cell(r['feature'])} | {_fmt(r['importance'])} | {_fmt(r['std'])} |" for r in expl["permutation_importance"][:12]]
        lines += ["", f"![permutation importance]({paths.PLOTS_DIR}/permutation_importance.png)", ""]
        if expl.get("shap_mean_abs"):
            lines += [f"![SHAP importance]({paths.PLOTS_DIR}/shap_importance.png)", ""]
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
    if view is not None and prediction_of(task["task"]) != "regression":
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
            lines += [f"### `{md_cell(col)}`{tag}", "", *_group_md(rows, metric, prediction_of(task["task"])), ""]
            rel = f"{paths.PLOTS_DIR}/segments_{_slug(col)}.png"
            if any(r.get(metric) is not None for r in rows):
                plots.segments(rows, metric, artifact_path(ctx, rel), f"{metric} by {col} (test split)", ev["test_score"])
                files[f"segments_{col}"] = rel
                lines += [f"![{md_cell(metric)} by {md_cell(col)}]({rel})", ""]
            lines += _fairness_notes(rows, prediction_of(task["task"]), col in sensitive) + [""]
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


def _fairness_notes(rows: list[dict[str, Any]], task: str, sensitive: bool) -> list[str]:
    notes = []
    keys = (("mae", "MAE"), ("mean_residual", "mean residual")) if task == "regression" else \
        (("accuracy", "accuracy"),) + ((("selection_rate", "selection rate"), ("tpr", "true positive rate"),
                                        ("fpr", "false positive rate")) if task == "binary" else ())
    for key, label in keys:
        g = _gap(rows, key)
        if g is None:
            continue
        fmt = (lambda v: f"{v * 100:.1f} percentage points") if key not in ("mae", "mean_residual") else (lambda v: _fmt(v, 2))
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
    from dsagent.tools.engineer import derived_markdown

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
             "categories). Output: " + ("a predicted value." if prediction_of(task["task"]) == "regression" else
                                        "a class and one probability per class (" + ", ".join(f"`{md_cell(c)}`" for c in task["classes"][:10]) + ")."),
             "- File: `model/model.skops` (skops format, loaded only with an explicit list of trusted types; no pickle).", "",
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
            lines += [f"### `{md_cell(col)}`{tag}", "", *_group_md(rows, ev["metric"], prediction_of(task["task"])), ""]
            lines += _fairness_notes(rows, prediction_of(task["task"]), col in sensitive) + [""]
            lines += fairness_md((ev.get("fairness") or {}).get(col))
    else:
        lines += ["- No segment or sensitive columns were named (answers `segment_columns` / `sensitive_columns`); "
                  "performance across groups and fairness were not assessed.", ""]
    if not sensitive:
        lines += ["- No sensitive attribute was named; fairness was not assessed.", ""]
    lines += ["## Caveats", "",
              f"- Confidence intervals come from resampling the {ev['n_test']} test rows; they cover sampling noise, not drift.",
              "- Feature importance is associational; correlated columns share it.",
              "- Scores hold for data like the training data. Apply monitoring.md with `dsagent monitor` to each new batch "
              "and retrain when its triggers fire.", ""]
    return "\n".join(lines)
