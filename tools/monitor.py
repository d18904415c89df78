"""plan_monitoring writes monitoring.json/.md (reference distributions, thresholds, triggers);
`apply_plan` is what `dsagent monitor` runs on a new batch.

Drift is judged by effect size AND evidence. PSI (against training-time bins) says how much a
distribution moved; a two-sample test (KS for numbers, chi-squared for categories) says whether
the move could be sampling noise at this batch size. A feature is in *alert* only when both agree
(PSI >= 0.25 and p < 0.01): on a batch of 60 rows PSI alone is noisy (its expected value under no
change is about (bins - 1) x (1/n_ref + 1/n_new) = 0.18), and on a batch of a million rows every
p-value is tiny, so neither decides alone.

With labels, the label distribution and performance are checked too (tools/monitor_labels.py):
performance on measures a base-rate change does not reward, with a bootstrap CI on the batch.

Verdicts and `dsagent monitor` exit codes: ok (0), investigate (3), retrain (4).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools import paths
from dsagent.tools.drift import (BINS, MIN_BATCH_ROWS, P_VALUE, PSI_ALERT, PSI_WARN, VERDICT_EXIT, _feature_drift, _num,
                                 categorical_reference, check_batch, numeric_reference, worse)
from dsagent.tools.markdown import md_cell
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, tool
from dsagent.tools.schemas import Evaluation, Explanation, MonitoringPlan
from dsagent.tools.task_types import fits_own_models, get_task_type, task_types


def _prediction_reference(task: dict[str, Any], pred: np.ndarray, proba: np.ndarray | None) -> dict[str, Any]:
    values, of = get_task_type(task["task"]).monitored_predictions(task, pred, proba)
    return (numeric_reference if pd.api.types.is_numeric_dtype(values) else categorical_reference)(values) | {"of": of}


def _reference_predictions(ctx: ToolContext, ev: dict[str, Any], task: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Held-out predictions (test split), plus the chosen candidate's out-of-fold predictions on
    the training split when they exist: both are out-of-sample, unlike in-sample predictions,
    whose sharper probabilities would read as drift on any new data."""
    saved = np.load(ctx.artifacts_dir / "test_predictions.npz")
    pred = np.asarray(saved["pred"])
    proba = np.asarray(saved["proba"]) if saved["proba"].size else None
    source = f"{len(pred)} test-split predictions"
    oof_path = ctx.artifacts_dir / paths.OOF
    if oof_path.exists():
        oof_all = np.load(oof_path)
        if ev["model"] in oof_all.files:
            oof = np.asarray(oof_all[ev["model"]], dtype=float)
            if not get_task_type(task["task"]).classification:
                oof = oof.reshape(len(oof), -1)[:, 0]
                keep = np.isfinite(oof)
                if keep.any():
                    pred = np.concatenate([pred, oof[keep]])
                    source += f" + {int(keep.sum())} out-of-fold predictions"
            elif proba is not None and oof.ndim == 2 and oof.shape[1] == proba.shape[1]:
                keep = np.isfinite(oof).all(axis=1)
                if keep.any():
                    proba = np.vstack([proba, oof[keep]])
                    pred = np.concatenate([pred, oof[keep].argmax(axis=1)])
                    source += f" + {int(keep.sum())} out-of-fold predictions"
    return pred, proba, source


# -- the plan -------------------------------------------------------------------------------
def build_plan(X_ref: pd.DataFrame, kinds: dict[str, str], task: dict[str, Any], ev: dict[str, Any],
               prediction_ref: dict[str, Any], *, important: list[str] | None = None, latency_ms: float | None = None,
               retrain_every_days: float = 90, n_train: int | None = None, n_test: int | None = None,
               labels: dict[str, Any] | None = None, decisions: dict[str, Any] | None = None,
               checks: list[dict[str, Any]] | None = None,
               derived: dict[str, tuple[str, pd.Series]] | None = None) -> dict[str, Any]:
    """The plan as data: pure, so tests can build one without a full run. `labels` (training label
    distribution), `decisions` (binary: predicted classes at the shipped threshold) and `checks`
    (prior-free measures with their floors) come from dsagent.tools.monitor_labels. `derived`:
    derived feature name -> (expression, its values on X_ref as the model computes them), tracked
    like raw columns (a drifted ratio can hide behind two inputs that each moved a little)."""
    from dsagent.tools.monitor_labels import floor_of

    features: dict[str, Any] = {}
    for col, kind in kinds.items():
        if kind == "text":
            from dsagent.tools.text_monitor import text_reference

            features[col] = text_reference(X_ref[col])
        else:
            features[col] = numeric_reference(X_ref[col]) if kind == "numeric" else categorical_reference(X_ref[col])
    for name, (expression, values) in (derived or {}).items():
        features[name] = numeric_reference(values) | {"derived": expression}
    ci = ev.get("test_ci")
    gib = ev["greater_is_better"]
    floor = floor_of(gib, ev["test_score"], ci)
    named = ev.get("scored_at") or ev["metric"]  # e.g. "f1 at the shipped threshold 0.31"
    checks = checks or []
    n_test = n_test or ev.get("n_test") or 0
    min_labelled = int(max(30, min(200, n_test)))
    p95 = (ev.get("latency") or {}).get("single_row_ms", {}).get("p95")
    latency_budget = latency_ms or (round(max(2 * p95, 5.0), 1) if p95 else None)
    important = [c for c in (important or []) if c in features][:3]
    n_train = n_train or len(X_ref)
    direction = "below" if gib else "above"
    also = "".join(f"; or {c['metric']} {'below' if c['greater_is_better'] else 'above'} {c['floor']:.4f}" for c in checks)
    return {
        "version": 3, "target": task["target"], "task": task["task"], "metric": ev["metric"], "greater_is_better": gib,
        "classes": task.get("classes"), "reference_rows": int(len(X_ref)), "features": features,
        "predictions": prediction_ref, "labels": labels, "decisions": decisions, "important_features": important,
        "thresholds": {"psi_warn": PSI_WARN, "psi_alert": PSI_ALERT, "p_value": P_VALUE, "null_rate_increase": 0.1,
                       "unseen_category_share": 0.05, "range_margin": 0.1, "out_of_range_share": 0.01,
                       "drifted_feature_share_for_retrain": 0.3, "min_batch_rows": MIN_BATCH_ROWS},
        "performance": {"test_score": ev["test_score"], "test_ci": ci, "floor": floor, "min_labelled_rows": min_labelled,
                        "scored_at": ev.get("scored_at"), "checks": checks,
                        "rule": f"retrain when {named} on at least {min_labelled} newly labelled rows is {direction} "
                                f"{floor:.4f} (the {'lower' if gib else 'upper'} bound of the test score's 95% CI; "
                                f"test score {ev['test_score']:.4f}){also}, with the batch's whole 95% bootstrap CI "
                                "past the floor (only the point estimate past it: investigate)"},
        "latency_budget_ms": latency_budget, "measured_p95_ms": p95,
        "retraining_triggers": [
            f"performance: {named} {direction} {floor:.4f}{also} on at least {min_labelled} newly labelled rows"
            " (the batch's 95% bootstrap CI wholly past the floor)",
            f"drift: PSI >= {PSI_ALERT} (with p < {P_VALUE}) on at least 30% of the features"
            + (f", or on one of the most important features ({', '.join(important)}) together with prediction drift"
               if important else ""),
            f"schedule: every {retrain_every_days:g} days even without alerts",
            f"new labels: once {max(50, round(0.25 * n_train))} labelled rows (25% of the {n_train} training rows) "
            "have arrived since training, retrain and compare on the newest rows",
        ],
        "rollout": [
            "shadow: run a retrained model beside the current one on 1-2 weeks of traffic; compare prediction PSI "
            f"(expect < {PSI_WARN}) and single-row latency (budget {latency_budget} ms)",
            "canary: route 5% of traffic, then 25%, then 100%, holding each step until at least "
            f"{min_labelled} labelled rows show {ev['metric']} not {direction} {floor:.4f}",
            "A/B: when the real goal is a business KPI, run a pre-registered A/B test before full rollout",
            "rollback: keep the previous model directory (model.skops + manifest.json) to restore in one copy",
        ],
        # Checks come at least four times per retraining period (weekly for the default 90 days).
        "schedule": {"check_every": f"each scored batch, at least every {min(7, max(1, round(retrain_every_days / 4)))} day(s)",
                     "retrain_every_days": retrain_every_days},
    }


@tool
def plan_monitoring(ctx: ToolContext, retrain_every_days: int | None = None) -> ToolOutput:
    """Write the monitoring plan (monitoring.json + monitoring.md) for the saved model: reference
    distributions per feature (quantile bins / category frequencies) and for predictions, drift
    thresholds (PSI 0.1 warn / 0.25 alert, confirmed by KS / chi-squared p < 0.01), data-quality
    rules (nulls, ranges, unseen categories), a performance floor from the test CI, a latency budget
    from the measured p95, retraining triggers and rollout advice. `dsagent monitor SESSION NEW_DATA`
    applies it (exit 0 ok, 3 investigate, 4 retrain).

    Args:
        retrain_every_days: scheduled retraining cadence if nothing triggers earlier; default the
            answers' retrain_every_days, else 90.
    """
    retrain_every_days = retrain_every_days or ctx.answers.get("retrain_every_days") or 90
    from dsagent.tools.monitor_labels import decision_reference, label_reference, reference_checks
    from dsagent.tools.task_data import test_data, training_data
    from dsagent.tools.unsupervised import saved_record

    if (rec := saved_record(ctx.artifacts_dir)) is not None:  # a task that fits its own models: its own plan
        return get_task_type(rec["task"]).write_monitoring_plan(ctx, rec, retrain_every_days)
    ev = Evaluation.read(ctx.artifacts_dir)
    if ev is None:
        raise ToolError("evaluate_model must run before plan_monitoring")
    X, y_train, task = training_data(ctx)
    pred, proba, source = _reference_predictions(ctx, ev, task)
    important: list[str] = []
    expl = Explanation.read(ctx.artifacts_dir)
    if expl is not None:
        important = expl.important_features()
    _, y_test, _ = test_data(ctx)
    saved = np.load(ctx.artifacts_dir / "test_predictions.npz")
    test_proba = np.asarray(saved["proba"]) if saved["proba"].size else None
    decisions = decision_reference(task, proba, (ev.get("threshold") or {}).get("threshold"))
    plan = build_plan(X, task["features"], task, ev, _prediction_reference(task, pred, proba) | {"source": source},
                      important=important, latency_ms=ctx.answers.get("latency_ms"), retrain_every_days=retrain_every_days,
                      n_train=task["n_train"], n_test=task["n_test"], labels=label_reference(task, y_train),
                      decisions=decisions | {"source": source} if decisions else None,
                      checks=reference_checks(task, ev["metric"], y_test, test_proba, ctx.seed), derived=_derived_reference(ctx, X, task))
    MonitoringPlan.model_validate(plan).write(ctx.artifacts_dir)
    artifact_path(ctx, paths.MONITORING_MD).write_text(plan_markdown(plan), encoding="utf-8")
    summary = {"features_tracked": len(plan["features"]), "performance_floor": round(plan["performance"]["floor"], 5),
               "latency_budget_ms": plan["latency_budget_ms"], "triggers": plan["retraining_triggers"],
               "files": [paths.MONITORING, paths.MONITORING_MD]}
    return ToolOutput(summary=summary, record=None, files={"monitoring": paths.MONITORING, "monitoring_md": paths.MONITORING_MD})


def _derived_reference(ctx: ToolContext, X: pd.DataFrame, task: dict[str, Any]) -> dict[str, tuple[str, pd.Series]]:
    """Each derived feature's expression and its values on the training rows, computed by the saved
    model's own fitted step (so windowed aggregates read only earlier rows, as at prediction time)."""
    from dsagent.tools.derived import parse_feature
    from dsagent.tools.derived_step import derived_values
    from dsagent.tools.model_io import load_model

    expressions = dict((p.name, p.expression) for p in map(parse_feature, (task.get("derived") or {}).get("features") or []))
    if not expressions:
        return {}
    values = derived_values(load_model(ctx.artifacts_dir / paths.MODEL)[0], X)
    return {name: (expr, values[name]) for name, expr in expressions.items() if name in values.columns}


def _labelled_checks_markdown(plan: dict[str, Any]) -> list[str]:
    """The label-distribution, predicted-positive-rate and performance bullets."""
    t, perf = plan["thresholds"], plan["performance"]
    lines = []
    labels = plan.get("labels")
    if labels:
        ref = (f"mean {_num(labels['stats'].get('mean'))}" if labels["type"] == "numeric" else
               ", ".join(f"{md_cell(c, 40)} {p:.1%}" for c, p in zip(labels["categories"][:5], labels["proportions"][:5])))
        lines.append(f"- **Label distribution** (when the target column is present): the labels of `{md_cell(plan['target'])}` "
                     f"against the training labels ({ref}), PSI >= {t['psi_alert']} with p < {t['p_value']} -> investigate. "
                     "PR-AUC, accuracy and F1 move with the share of each class, so a batch with every label inverted can "
                     "score a higher PR-AUC than the test split; this check catches it.")
    decisions = plan.get("decisions")
    if decisions:
        positive = str(plan["classes"][1])
        rate = dict(zip(decisions["categories"], decisions["proportions"])).get(positive, 0.0)
        lines.append(f"- **Predicted-positive rate**: the share of rows predicted `{md_cell(positive)}` at the shipped "
                     f"threshold {decisions['threshold']:.4g} ({rate:.1%} on the reference predictions), same PSI rule "
                     "-> investigate.")
    lines.append(f"- **Performance** (at least {perf['min_labelled_rows']} labelled rows): {perf['rule']}.")
    for c in perf.get("checks") or []:
        ci = c.get("test_ci")
        lines.append(f"  - also {c['metric']}, which a change in the share of each class does not reward: test "
                     f"{c['test_score']:.4f}" + (f" (95% CI {ci[0]:.4f} to {ci[1]:.4f})" if ci else "")
                     + f", floor {c['floor']:.4f}.")
    if plan["metric"] in ("pr_auc", "accuracy", "f1", "precision", "recall"):
        lines.append(f"  - {plan['metric']} depends on the share of each class: when the label distribution moved, it "
                     "is reported but does not decide.")
    return lines


def plan_markdown(plan: dict[str, Any]) -> str:
    t = plan["thresholds"]
    perf = plan["performance"]
    lines = [f"# Monitoring plan: `{plan['target']}` ({plan['task']})", "",
             "Apply it to each new batch of rows (with or without the target column):", "",
             "```", "dsagent monitor SESSION_DIR_OR_MODEL new_batch.csv          # table on stdout",
             "dsagent monitor SESSION_DIR_OR_MODEL new_batch.csv --json   # one JSON object", "```", "",
             "Exit codes: **0** ok, **3** investigate, **4** retrain (2: bad input, e.g. a missing column). "
             "A scheduler can act on the exit code alone.", "",
             "## What is checked", "",
             f"- **Feature drift**: PSI per feature against {plan['reference_rows']} training rows binned at training time "
             f"(numbers: {BINS} quantile bins; categories: top 30 + other). Warn at PSI {t['psi_warn']}, alert at "
             f"{t['psi_alert']}. An alert also needs the two-sample test (KS for numbers, chi-squared for categories) to give "
             f"p < {t['p_value']}, so sampling noise in a small batch does not raise one; in a large batch the PSI "
             "threshold decides.",
             *([f"- **Derived features** ({', '.join(f'`{md_cell(c)}`' for c, r in plan['features'].items() if r.get('derived'))}): "
                "computed from each batch's raw columns by the model's own Pipeline step, then checked like the raw "
                "columns (a ratio can drift while its two inputs each move too little to alert)."]
               if any(r.get("derived") for r in plan["features"].values()) else []),
             f"- **Prediction drift**: the same on {plan['predictions'].get('of', 'the predictions')} "
             f"(reference: {plan['predictions'].get('source', 'held-out predictions')}).",
             f"- **Data quality**: null rate up by more than {t['null_rate_increase']:.0%} points; more than "
             f"{t['out_of_range_share']:.0%} of a numeric column beyond the training range widened by {t['range_margin']:.0%} "
             f"of its width; more than {t['unseen_category_share']:.0%} of a categorical column in categories never seen "
             "in training (the model treats them as unknown).",
             *(["- **Free text** (" + ", ".join(f"`{md_cell(c)}`" for c, r in plan["features"].items() if r["type"] == "text")
                + "): the length in words (PSI and KS, as for numbers); vocabulary drift, the share of word occurrences "
                "outside the training vocabulary, against the share expected on new rows of the same kind (measured "
                "between two halves of the training rows): 5 points above it warns, 15 alerts; and the empty-text rate, "
                f"a data-quality violation when up by more than {t['null_rate_increase']:.0%} points."]
               if any(r["type"] == "text" for r in plan["features"].values()) else []),
             *_labelled_checks_markdown(plan),
             f"- **Latency budget**: {plan['latency_budget_ms']} ms per single-row prediction"
             + (f" (twice the measured p95 of {plan['measured_p95_ms']} ms)" if plan.get("measured_p95_ms") else "")
             + "; measure it where the model is served.",
             f"- **Batch size**: at least {t['min_batch_rows']} rows per check; smaller batches are reported but marked "
             "unreliable.", "",
             "## Verdict", "",
             "- **retrain** (exit 4): a performance measure past its floor with the batch's whole 95% CI; or drift alerts "
             "on at least "
             f"{t['drifted_feature_share_for_retrain']:.0%} of the features"
             + (f"; or an alert on a top feature ({', '.join(plan['important_features'])}) together with prediction drift"
                if plan.get("important_features") else "") + ".",
             "- **investigate** (exit 3): any other drift alert, prediction drift, a moved label distribution or "
             "predicted-positive rate, a performance measure past its floor by its point estimate only, or a data-quality "
             "violation.",
             "- **ok** (exit 0): nothing above; PSI warnings are listed but do not change the verdict.", "",
             "## Retraining triggers", ""] + [f"- {x}" for x in plan["retraining_triggers"]] + \
            ["", "## Rollout advice", ""] + [f"- {x}" for x in plan["rollout"]] + ["", "## Reference per feature", "",
             "| feature | type | nulls at training | reference (numbers: p5 / median / p95, range; categories: top 3) |",
             "|---|---|---|---|"]
    for name, ref in plan["features"].items():
        if ref["type"] == "text":
            from dsagent.tools.text_monitor import text_plan_line

            desc = text_plan_line(ref)
        elif ref["type"] == "numeric":
            s = ref.get("stats") or {}
            desc = f"{_num(s.get('p05'))} / {_num(s.get('p50'))} / {_num(s.get('p95'))}; range {_num(ref['min'])} to {_num(ref['max'])}"
        else:
            desc = ", ".join(f"{md_cell(c, 40)} {p:.0%}" for c, p in zip(ref["categories"][:3], ref["proportions"][:3]))
        mark = " (top feature)" if name in plan.get("important_features", []) else ""
        kind = ref["type"] + (f", derived: `{md_cell(ref['derived'], 120)}`" if ref.get("derived") else "")
        lines.append(f"| {md_cell(name, 40)}{mark} | {kind} | {ref['null_rate']:.1%} | {desc} |")
    return "\n".join(lines + [""])


# -- applying it ------------------------------------------------------------------------------
def find_plan(model_path: Path) -> Path:
    """The plan beside a model file: the session's plan for v1, model/vN/monitoring.json for vN."""
    from dsagent.tools.versions import NAME

    retrained = NAME.match(model_path.parent.name) is not None
    for candidate in ((model_path.parent / paths.MONITORING,) if retrained else
                      (model_path.parent.parent / paths.MONITORING, model_path.parent / paths.MONITORING)):
        if candidate.exists():
            return candidate
    if retrained:
        raise ToolError(f"version {model_path.parent.name} has no {Path(paths.MONITORING).name} (it was retrained by an "
                        "older dsagent); monitor another version with --version, or retrain again to get one")
    raise ToolError(f"no {paths.MONITORING} found beside {model_path}; run plan_monitoring in that session first "
                    "(dsagent run does it)")



def apply_plan(session_or_model: str | Path, data: pd.DataFrame, version: str | None = None) -> dict[str, Any]:
    """Drift, data quality and (with labels) performance of a new batch against the plan of
    `version` (default the active one); verdict ok/investigate/retrain."""
    from dsagent.tools.model_io import resolve_model_path
    from dsagent.tools.versions import name_of

    model_path = resolve_model_path(session_or_model, version)
    return _apply(model_path, data) | {"model_version": name_of(model_path)}


def _apply(model_path: Path, data: pd.DataFrame) -> dict[str, Any]:
    from dsagent.tools.model_io import load_model
    from dsagent.tools.serving import predict_frame

    plan = json.loads(find_plan(model_path).read_text())
    own = task_types().get(plan.get("task") or "")
    if own is not None and own.prediction is None:  # its own checks: segment shares, flag rate, forecast vs actuals...
        return own.apply_monitoring(plan, *load_model(model_path), data)
    t = plan["thresholds"]
    check_batch(plan, data)
    report: dict[str, Any] = {"rows": len(data), "features": {}, "quality": [], "reasons": [], "notes": []}
    if len(data) < t["min_batch_rows"]:
        report["notes"].append(f"only {len(data)} rows: drift estimates are unreliable below {t['min_batch_rows']} rows")
    model, manifest = load_model(model_path)
    derived = pd.DataFrame(index=data.index)
    if any("derived" in ref for ref in plan["features"].values()):  # computed from the raw rows by the model's step
        from dsagent.tools.derived_step import derived_values
        from dsagent.tools.serving import check_schema

        derived = derived_values(model, check_schema(manifest, data, lambda _msg: None))
    for col, ref in plan["features"].items():
        values = derived[col] if "derived" in ref else data[col]
        if ref["type"] == "text":
            from dsagent.tools.text_monitor import text_drift

            report["features"][col] = text_drift(ref, values, t, report["quality"], col)
        else:
            report["features"][col] = _feature_drift(ref, values, t, report["quality"], col)
    alerts = [c for c, e in report["features"].items() if e["status"] == "alert"]
    warns = [c for c, e in report["features"].items() if e["status"] == "warn"]

    preds = predict_frame(model, manifest, data, warn=lambda _msg: None)
    pref = plan["predictions"]
    series = get_task_type(plan["task"]).monitored_output(preds, manifest)
    pred_entry = _feature_drift(pref, series, t, [], "prediction")
    report["prediction"] = {k: v for k, v in pred_entry.items() if k in ("psi", "p_value", "status", "test")} | {"of": pref.get("of")}
    report["prediction_psi"] = pred_entry["psi"]
    pred_alert = pred_entry["status"] == "alert"

    verdict = "ok"
    if alerts:
        verdict = "investigate"
        report["reasons"].append("drift (PSI >= {} and p < {}) in: {}".format(
            t["psi_alert"], t["p_value"], ", ".join(f"{c} (PSI {report['features'][c]['psi']:.2f})" for c in alerts)))
    if report["quality"]:
        verdict = "investigate"
        report["reasons"].append(f"{len(report['quality'])} data-quality violation(s): " + "; ".join(report["quality"][:3]))
    if pred_alert:
        verdict = "investigate"
        report["reasons"].append(f"prediction drift: PSI {pred_entry['psi']:.2f} on {pref.get('of')}")
    if warns:
        report["notes"].append("PSI warning (moved, below the alert level or not significant) in: " + ", ".join(warns))
    n_features = len(plan["features"])
    if alerts and len(alerts) >= t["drifted_feature_share_for_retrain"] * n_features:
        verdict = "retrain"
        report["reasons"].append(f"{len(alerts)} of {n_features} features drifted (retrain at "
                                 f"{t['drifted_feature_share_for_retrain']:.0%})")
    top_drifted = [c for c in alerts if c in plan.get("important_features", [])]
    if top_drifted and pred_alert:
        verdict = "retrain"
        report["reasons"].append(f"a top feature drifted ({', '.join(top_drifted)}) and so did the predictions")

    from dsagent.tools.monitor_labels import check_decisions, check_labelled

    verdict = worse(verdict, check_decisions(plan, preds, report))
    if plan["target"] in data.columns:
        verdict = worse(verdict, check_labelled(plan, manifest, data, preds, report))
    report["verdict"] = verdict
    report["exit_code"] = VERDICT_EXIT[verdict]
    report["drifted"] = alerts
    return report
