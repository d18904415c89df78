"""The labelled half of `dsagent monitor`: the label distribution, the predicted-positive rate and
performance, on the rows of a batch whose target is known.

Base rates fool metrics. PR-AUC, accuracy and F1 move with the share of positives: a batch whose
every label is inverted (12% -> 88% positives) scored a higher PR-AUC than the test split and
passed. So the monitor
  1. checks the label distribution itself against the training labels (PSI confirmed by
     chi-squared for classes, KS for a regression target), the same rule as a feature;
  2. for a binary model, checks the share of rows predicted positive at the shipped threshold;
  3. judges performance on measures a base-rate change does not reward (ROC-AUC and log-loss)
     beside the chosen metric, each with a bootstrap 95% CI on the batch. A measure whose whole
     batch CI lies past its floor asks for a retrain; one whose point estimate alone is past it,
     for an investigation. A prior-dependent metric does not decide when the labels' distribution
     moved: its value is not comparable with the test split's then.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.metrics import bootstrap_ci, get_metric, score
from dsagent.tools.drift import _feature_drift, categorical_reference, numeric_reference
from dsagent.tools.task_types import prediction_of

PRIOR_DEPENDENT = ("pr_auc", "accuracy", "f1", "precision", "recall")
PRIOR_FREE = {"binary": ("roc_auc", "log_loss"), "multiclass": ("roc_auc_ovr", "log_loss")}
BATCH_RESAMPLES = 400  # bootstrap resamples of a batch: enough for a 95% interval, quick on 2 cores


def floor_of(greater_is_better: bool, value: float, ci: Any) -> float:
    """The performance floor: the test CI's bound on the bad side (the test score without a CI)."""
    return float((ci[0] if greater_is_better else ci[1]) if ci else value)


# -- at planning time -------------------------------------------------------------------------
def label_reference(task: dict[str, Any], y: np.ndarray) -> dict[str, Any]:
    """Distribution of the training labels (class names, or the regression target's bins)."""
    of = {"of": f"labels of {task['target']}"}
    if prediction_of(task["task"]) == "regression":
        return numeric_reference(pd.Series(np.asarray(y, dtype=float))) | of
    return categorical_reference(pd.Series([str(task["classes"][int(i)]) for i in y])) | of


def decision_reference(task: dict[str, Any], proba: np.ndarray | None, threshold: float | None) -> dict[str, Any] | None:
    """Binary only: predicted classes at the shipped threshold on the reference predictions."""
    if prediction_of(task["task"]) != "binary" or proba is None:
        return None
    cut = 0.5 if threshold is None else float(threshold)
    idx = (proba[:, 1] >= cut).astype(int)
    return categorical_reference(pd.Series([str(task["classes"][i]) for i in idx])) | {
        "of": f"predicted class at threshold {cut:.4g}", "threshold": cut}


def reference_checks(task: dict[str, Any], primary: str, y_test: np.ndarray, proba: np.ndarray | None,
                     seed: int) -> list[dict[str, Any]]:
    """Test scores, CIs and floors of the prior-free measures (skipping the primary metric)."""
    checks: list[dict[str, Any]] = []
    if proba is None:
        return checks
    for name in PRIOR_FREE.get(prediction_of(task["task"]), ()):
        metric = get_metric(name, prediction_of(task["task"]))
        if metric.name == primary:
            continue
        try:
            value = score(metric, y_test, proba.argmax(axis=1), proba)
        except ValueError:  # e.g. a test split with one class
            continue
        ci = bootstrap_ci(metric, y_test, proba.argmax(axis=1), proba, seed=seed, time_limit=2.0)
        checks.append({"metric": metric.name, "greater_is_better": metric.greater_is_better, "test_score": value,
                       "test_ci": ci, "floor": floor_of(metric.greater_is_better, value, ci)})
    return checks


# -- on a batch -------------------------------------------------------------------------------
def _share_text(ref: dict[str, Any], values: pd.Series, positive: str | None, before_text: str = "at training") -> str:
    """'yes 12.8% at training, 87.0% here' (the positive class, else the top 3 classes) or the mean."""
    if ref["type"] == "numeric":
        finite = pd.to_numeric(values, errors="coerce").dropna()
        return f"mean {ref['stats'].get('mean', float('nan')):.4g} {before_text}, {finite.mean():.4g} here"
    now = values.astype(str).value_counts(normalize=True)
    before = dict(zip(ref["categories"], ref["proportions"]))
    shown = [positive] if positive is not None else ref["categories"][:3]
    return "; ".join(f"{c} {before.get(c, 0.0):.1%} {before_text}, {now.get(c, 0.0):.1%} here" for c in shown)


def check_decisions(plan: dict[str, Any], preds: pd.DataFrame, report: dict[str, Any]) -> str:
    """The predicted-positive rate at the shipped threshold against the reference; a verdict."""
    ref = plan.get("decisions")
    if not ref:
        return "ok"
    entry = _feature_drift(ref, preds["prediction"].astype(str), plan["thresholds"], [], "decisions")
    positive = str(plan["classes"][1])
    report["decisions"] = {k: entry[k] for k in ("psi", "status") if k in entry} | {
        "p_value": entry.get("p_value"), "of": ref["of"],
        "positive_rate": round(float((preds["prediction"].astype(str) == positive).mean()), 4),
        "reference_positive_rate": round(dict(zip(ref["categories"], ref["proportions"])).get(positive, 0.0), 4)}
    if entry["status"] != "alert":
        return "ok"
    report["reasons"].append(f"predicted-positive rate moved (PSI {entry['psi']:.2f}): "
                             + _share_text(ref, preds["prediction"], positive, "in the reference predictions"))
    return "investigate"


def _encode(plan, manifest, y_raw: pd.Series, preds: pd.DataFrame, report) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Labels, shipped decisions (binary: at the manifest's threshold, as `dsagent predict` gives
    them) and probabilities of the labelled rows, dropping labels the model does not know."""
    if prediction_of(plan["task"]) == "regression":
        y = pd.to_numeric(y_raw, errors="coerce").to_numpy(dtype=float)
        keep = np.isfinite(y)
        return y[keep], preds["prediction"].to_numpy(dtype=float)[keep], None
    lookup = {str(c): i for i, c in enumerate(manifest["classes"])}
    keep = y_raw.astype(str).isin(lookup).to_numpy()
    if (~keep).any():
        report["quality"].append(f"{plan['target']}: {int((~keep).sum())} labelled row(s) with a class unknown to the model")
    y = y_raw.astype(str)[keep].map(lookup).to_numpy(dtype=int)
    pred = preds["prediction"].astype(str)[keep].map(lookup).to_numpy(dtype=int)
    proba = preds[[f"proba_{c}" for c in manifest["classes"]]].to_numpy()[keep]
    return y, pred, proba


def _judge(check: dict[str, Any], task: str, y, pred, proba, labels_moved: bool, at: str | None) -> dict[str, Any] | str:
    """One measure on the batch: an entry for the report, or a note when it is undefined here."""
    metric = get_metric(check["metric"], task)
    try:
        value = score(metric, y, pred, proba)
    except ValueError as exc:  # e.g. ROC-AUC on a batch with one class
        return f"{metric.name} undefined on this batch ({str(exc).splitlines()[0][:80]})"
    ci = bootstrap_ci(metric, y, pred, proba, n=BATCH_RESAMPLES, seed=0, time_limit=1.5)
    gib, floor = metric.greater_is_better, check["floor"]
    past = value < floor if gib else value > floor
    # Without a CI (too few usable resamples), the point estimate decides, as it always did.
    whole_ci_past = ci is None or (ci[1] < floor if gib else ci[0] > floor)
    comparable = not (labels_moved and metric.name in PRIOR_DEPENDENT)
    decides = "retrain" if past and whole_ci_past else "investigate" if past else "ok"
    return {"metric": metric.name, "value": round(float(value), 5), "ci": [round(c, 5) for c in ci] if ci else None,
            "floor": floor, "test_score": check["test_score"], "rows": int(len(y)), "past_floor": bool(past),
            "at": at, "comparable": comparable, "decides": decides if comparable else "ok"}


def check_labelled(plan: dict[str, Any], manifest: dict[str, Any], data: pd.DataFrame, preds: pd.DataFrame,
                   report: dict[str, Any]) -> str:
    """Label distribution and performance on the labelled rows; fills the report, returns a verdict."""
    target, verdict = plan["target"], "ok"
    labelled = data[target].notna().to_numpy()
    if not labelled.any():
        return verdict
    y_raw = data.loc[labelled, target]
    labels_moved = False
    if plan.get("labels"):
        entry = _feature_drift(plan["labels"], y_raw, plan["thresholds"], [], target)
        report["labels"] = {k: entry[k] for k in ("psi", "status", "rows") if k in entry} | {
            "p_value": entry.get("p_value"), "test": entry.get("test")}
        labels_moved = entry["status"] == "alert"
        if labels_moved:
            verdict = "investigate"
            positive = str(plan["classes"][1]) if prediction_of(plan["task"]) == "binary" else None
            report["reasons"].append(f"the distribution of {target} moved (PSI {entry['psi']:.2f}): "
                                     + _share_text(plan["labels"], y_raw, positive))
    perf = plan["performance"]
    need = perf.get("min_labelled_rows", 30)
    if labelled.sum() < need:
        report["notes"].append(f"{int(labelled.sum())} labelled rows: performance is checked from {need}")
        return verdict
    y, pred, proba = _encode(plan, manifest, y_raw, preds.loc[labelled], report)
    primary = {"metric": plan["metric"], "floor": perf["floor"], "test_score": perf["test_score"]}
    entries = []
    for check in [primary] + perf.get("checks", []):
        at = perf.get("scored_at") if check is primary else None
        judged = _judge(check, plan["task"], y, pred, proba, labels_moved, at)
        if isinstance(judged, str):
            report["notes"].append(judged)
            continue
        entries.append(judged)
        where = f" ({at})" if at else ""
        ci_text = f", batch 95% CI {judged['ci'][0]:.4f} to {judged['ci'][1]:.4f}" if judged["ci"] else ""
        if not judged["comparable"] and judged["past_floor"]:
            report["notes"].append(f"{judged['metric']} {judged['value']:.4f} is past its floor {judged['floor']:.4f}, but "
                                   f"it depends on the share of each class, which moved: not used for the verdict")
        elif judged["decides"] == "retrain":
            verdict = "retrain"
            report["reasons"].append(f"{judged['metric']}{where} {judged['value']:.4f} is past the floor "
                                     f"{judged['floor']:.4f}{ci_text} (test score {judged['test_score']:.4f})")
        elif judged["decides"] == "investigate":
            verdict = verdict if verdict == "retrain" else "investigate"
            report["reasons"].append(f"{judged['metric']}{where} {judged['value']:.4f} is past the floor "
                                     f"{judged['floor']:.4f}, within sampling noise{ci_text}")
    if entries:
        head = entries[0] if entries[0]["metric"] == get_metric(plan["metric"], plan["task"]).name else None
        report["performance"] = (head or {}) | {"checks": entries}
    return verdict
