"""plan_monitoring writes monitoring.json/.md (reference distributions, thresholds, triggers);
`apply_plan` is what `dsagent monitor` runs on new data. Drift is judged by effect size (PSI),
with KS / chi-squared p-values reported beside it: with many rows, p-values alone flag everything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tools import paths
from tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, tool
from tools.task import training_data

PSI_WARN, PSI_ALERT = 0.1, 0.25
EPS = 1e-4


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.clip(np.asarray(expected, float), EPS, None)
    a = np.clip(np.asarray(actual, float), EPS, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_reference(values: pd.Series, bins: int = 10) -> dict[str, Any]:
    v = pd.to_numeric(values, errors="coerce")
    finite = v[np.isfinite(v)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1))) if len(finite) else np.array([0.0, 1.0])
    inner = edges[1:-1].tolist()
    counts = np.bincount(np.searchsorted(inner, finite, side="right"), minlength=len(inner) + 1)
    return {"type": "numeric", "edges": inner, "proportions": (counts / max(counts.sum(), 1)).tolist(),
            "null_rate": float(v.isna().mean()), "min": float(finite.min()) if len(finite) else None,
            "max": float(finite.max()) if len(finite) else None,
            "sample": finite.sample(min(2000, len(finite)), random_state=0).round(6).tolist()}


def categorical_reference(values: pd.Series, top: int = 30) -> dict[str, Any]:
    s = values.dropna().astype(str)
    freq = s.value_counts(normalize=True)
    kept = freq.iloc[:top]
    return {"type": "categorical", "categories": kept.index.tolist(), "proportions": kept.tolist(),
            "other": float(max(0.0, 1 - kept.sum())), "null_rate": float(values.isna().mean())}


def numeric_distribution(ref: dict[str, Any], values: pd.Series) -> np.ndarray:
    v = pd.to_numeric(values, errors="coerce")
    finite = v[np.isfinite(v)]
    counts = np.bincount(np.searchsorted(ref["edges"], finite, side="right"), minlength=len(ref["edges"]) + 1)
    return counts / max(counts.sum(), 1)


def categorical_distribution(ref: dict[str, Any], values: pd.Series) -> tuple[np.ndarray, float]:
    s = values.dropna().astype(str)
    freq = s.value_counts(normalize=True)
    props = np.array([freq.get(c, 0.0) for c in ref["categories"]] + [max(0.0, 1 - sum(freq.get(c, 0.0) for c in ref["categories"]))])
    unseen = float(freq[~freq.index.isin(ref["categories"])].sum()) if len(freq) else 0.0
    return props, unseen


def _prediction_reference(task: dict[str, Any], pred: np.ndarray, proba: np.ndarray | None) -> dict[str, Any]:
    if task["task"] == "binary":
        return numeric_reference(pd.Series(proba[:, 1])) | {"of": f"P({task['classes'][1]})"}
    if task["task"] == "multiclass":
        labels = pd.Series([task["classes"][i] for i in pred])
        return categorical_reference(labels) | {"of": "predicted class"}
    return numeric_reference(pd.Series(pred)) | {"of": "predicted value"}


@tool
def plan_monitoring(ctx: ToolContext, retrain_every_days: int = 90) -> ToolOutput:
    """Write the monitoring plan (monitoring.json + monitoring.md) for the saved model: reference
    distributions per feature and for predictions, drift thresholds (PSI 0.1 warn / 0.25 alert,
    KS/chi-squared beside it), data-quality rules (nulls, ranges, unseen categories), a
    performance floor from the test CI, a latency budget from measured p95, retraining triggers
    and rollout advice. `dsagent monitor SESSION NEW_DATA` applies it.

    Args:
        retrain_every_days: scheduled retraining cadence if nothing triggers earlier.
    """
    ev_path = ctx.artifacts_dir / paths.EVALUATION
    if not ev_path.exists():
        raise ToolError("evaluate_model must run before plan_monitoring")
    ev = json.loads(ev_path.read_text())
    X, _, task = training_data(ctx)
    features: dict[str, Any] = {}
    for col, kind in task["features"].items():
        features[col] = numeric_reference(X[col]) if kind == "numeric" else categorical_reference(X[col])
    preds = np.load(ctx.artifacts_dir / "test_predictions.npz")
    proba = preds["proba"] if preds["proba"].size else None
    ci = ev.get("test_ci")
    floor = (ci[0] if ev["greater_is_better"] else ci[1]) if ci else ev["test_score"]
    p95 = ev.get("latency", {}).get("single_row_ms", {}).get("p95")
    latency_budget = ctx.answers.get("latency_ms") or (round(max(2 * p95, 5.0), 2) if p95 else None)
    plan = {
        "version": 1, "target": task["target"], "task": task["task"], "metric": ev["metric"],
        "greater_is_better": ev["greater_is_better"], "features": features,
        "predictions": _prediction_reference(task, preds["pred"], proba),
        "thresholds": {"psi_warn": PSI_WARN, "psi_alert": PSI_ALERT, "p_value": 0.01,
                       "null_rate_increase": 0.1, "unseen_category_share": 0.05, "range_margin": 0.1,
                       "drifted_feature_share_for_retrain": 0.3},
        "performance": {"test_score": ev["test_score"], "floor": floor,
                        "rule": f"retrain when {ev['metric']} on labelled new data is {'below' if ev['greater_is_better'] else 'above'} "
                                f"{floor:.4f} (the 95% CI bound from the test split)"},
        "latency_budget_ms": latency_budget,
        "retraining_triggers": [
            f"performance: {ev['metric']} beyond the floor {floor:.4f} on at least 200 newly labelled rows",
            f"drift: PSI >= {PSI_ALERT} on a top-5 important feature, or on >= 30% of features, or on the predictions",
            f"schedule: every {retrain_every_days} days even without alerts",
            "new labels: when labelled rows since training exceed 25% of the training set",
        ],
        "rollout": [
            "shadow: run the new model beside the current one for 1-2 weeks, compare predictions and latency",
            "canary: route 5-10% of traffic, watch the metric floor and latency budget, then ramp",
            "A/B: when a business KPI is the real target, test it with a pre-registered sample size",
            "rollback: keep the previous model artifact (model.skops + manifest) ready to restore",
        ],
    }
    artifact_path(ctx, paths.MONITORING).write_text(json.dumps(plan, indent=1))
    artifact_path(ctx, paths.MONITORING_MD).write_text(plan_markdown(plan), encoding="utf-8")
    summary = {"features_tracked": len(features), "performance_floor": round(floor, 5), "latency_budget_ms": latency_budget,
               "triggers": plan["retraining_triggers"], "files": [paths.MONITORING, paths.MONITORING_MD]}
    return ToolOutput(summary=summary, record=None, files={"monitoring": paths.MONITORING, "monitoring_md": paths.MONITORING_MD})


def plan_markdown(plan: dict[str, Any]) -> str:
    t = plan["thresholds"]
    lines = [f"# Monitoring plan: `{plan['target']}` ({plan['task']})", "",
             "Apply it to a new batch with `dsagent monitor SESSION_OR_MODEL NEW_DATA.csv` "
             "(exit 0 ok, 3 investigate, 4 retrain).", "",
             "## What is checked", "",
             f"- **Feature drift**: PSI per feature against training-time bins; warn at {t['psi_warn']}, alert at {t['psi_alert']}. "
             f"KS (numeric) / chi-squared (categorical) p-values are reported beside PSI but do not decide alone.",
             f"- **Prediction drift**: PSI of {plan['predictions'].get('of', 'predictions')}.",
             f"- **Data quality**: null rate up by more than {t['null_rate_increase']:.0%}; numeric values beyond the training "
             f"range by more than {t['range_margin']:.0%} of it; more than {t['unseen_category_share']:.0%} unseen categories.",
             f"- **Performance** (when the target column is present): {plan['performance']['rule']}.",
             f"- **Latency budget**: {plan['latency_budget_ms']} ms per single-row prediction.", "",
             "## Retraining triggers", ""] + [f"- {x}" for x in plan["retraining_triggers"]] + \
            ["", "## Rollout advice", ""] + [f"- {x}" for x in plan["rollout"]] + ["", "## Features tracked", "",
             "| feature | type | null rate at training |", "|---|---|---|"] + \
            [f"| {name} | {ref['type']} | {ref['null_rate']:.1%} |" for name, ref in plan["features"].items()] + [""]
    return "\n".join(lines)


def apply_plan(session_or_model: str | Path, data: pd.DataFrame) -> dict[str, Any]:
    """Drift, data quality and (with labels) performance of a new batch; verdict ok/investigate/retrain."""
    from scipy import stats

    from tools.metrics import get_metric, score
    from tools.model_io import load_model, resolve_model_path
    from tools.serving import predict_frame

    model_path = resolve_model_path(session_or_model)
    plan_path = model_path.parent.parent / paths.MONITORING
    if not plan_path.exists():
        raise ToolError(f"no monitoring plan beside {model_path}; run plan_monitoring in that session first")
    plan = json.loads(plan_path.read_text())
    t = plan["thresholds"]
    missing = [c for c in plan["features"] if c not in data.columns]
    if missing:
        raise ToolError(f"new data lacks column(s) {', '.join(missing[:10])} that the model needs")
    report: dict[str, Any] = {"rows": len(data), "features": {}, "quality": [], "reasons": []}
    alerts = []
    for col, ref in plan["features"].items():
        values = data[col]
        entry: dict[str, Any] = {"null_rate": round(float(values.isna().mean()), 4)}
        if ref["type"] == "numeric":
            dist = numeric_distribution(ref, values)
            entry["psi"] = round(psi(ref["proportions"], dist), 4)
            finite = pd.to_numeric(values, errors="coerce").dropna()
            if len(finite) and ref["sample"]:
                entry["ks_p"] = float(stats.ks_2samp(ref["sample"], finite.to_numpy()).pvalue)
            if ref["min"] is not None and len(finite):
                margin = t["range_margin"] * max(ref["max"] - ref["min"], 1e-12)
                out = float(((finite < ref["min"] - margin) | (finite > ref["max"] + margin)).mean())
                if out > 0.01:
                    report["quality"].append(f"{col}: {out:.1%} of values outside the training range")
        else:
            dist, unseen = categorical_distribution(ref, values)
            expected = np.array(ref["proportions"] + [ref["other"]])
            entry["psi"] = round(psi(expected, dist), 4)
            entry["unseen_share"] = round(unseen, 4)
            counts = dist * max(values.notna().sum(), 1)
            try:
                entry["chi2_p"] = float(stats.chisquare(counts + 0.5, (np.clip(expected, EPS, None) / np.clip(expected, EPS, None).sum())
                                                        * (counts + 0.5).sum()).pvalue)
            except ValueError:
                pass
            if unseen > t["unseen_category_share"]:
                report["quality"].append(f"{col}: {unseen:.1%} unseen categories")
        if entry["null_rate"] > ref["null_rate"] + t["null_rate_increase"]:
            report["quality"].append(f"{col}: null rate {entry['null_rate']:.1%} vs {ref['null_rate']:.1%} at training")
        entry["status"] = "alert" if entry["psi"] >= t["psi_alert"] else "warn" if entry["psi"] >= t["psi_warn"] else "ok"
        if entry["status"] == "alert":
            alerts.append(col)
        report["features"][col] = entry
    model, manifest = load_model(model_path)
    preds = predict_frame(model, manifest, data, warn=lambda _msg: None)
    pref = plan["predictions"]
    if pref["type"] == "numeric":
        series = preds[f"proba_{manifest['classes'][1]}"] if plan["task"] == "binary" else preds["prediction"]
        report["prediction_psi"] = round(psi(pref["proportions"], numeric_distribution(pref, series)), 4)
    else:
        dist, _ = categorical_distribution(pref, preds["prediction"].astype(str))
        report["prediction_psi"] = round(psi(np.array(pref["proportions"] + [pref["other"]]), dist), 4)
    verdict = "ok"
    if alerts:
        verdict = "investigate"
        report["reasons"].append(f"drift (PSI >= {t['psi_alert']}) in: {', '.join(alerts)}")
    if report["quality"]:
        verdict = "investigate"
        report["reasons"].append(f"{len(report['quality'])} data-quality violation(s)")
    if report["prediction_psi"] >= t["psi_alert"]:
        verdict = "investigate"
        report["reasons"].append(f"prediction drift (PSI {report['prediction_psi']})")
    if len(alerts) >= max(1, t["drifted_feature_share_for_retrain"] * len(plan["features"])):
        verdict = "retrain"
        report["reasons"].append(f"{len(alerts)} of {len(plan['features'])} features drifted")
    if plan["target"] in data.columns and data[plan["target"]].notna().sum() >= 30:
        metric = get_metric(plan["metric"], plan["task"])
        labelled = data[plan["target"]].notna().to_numpy()
        y_raw = data.loc[labelled, plan["target"]]
        if plan["task"] == "regression":
            y = y_raw.to_numpy(dtype=float)
            value = score(metric, y, preds.loc[labelled, "prediction"].to_numpy(dtype=float), None)
        else:
            lookup = {c: i for i, c in enumerate(manifest["classes"])}
            keep = y_raw.astype(str).isin(lookup).to_numpy()
            y = y_raw.astype(str)[keep].map(lookup).to_numpy(dtype=int)
            proba = preds.loc[labelled, [f"proba_{c}" for c in manifest["classes"]]].to_numpy()[keep]
            value = score(metric, y, proba.argmax(axis=1), proba)
        floor = plan["performance"]["floor"]
        below = value < floor if plan["greater_is_better"] else value > floor
        report["performance"] = {"metric": plan["metric"], "value": round(value, 5), "floor": floor, "below_floor": bool(below)}
        if below:
            verdict = "retrain"
            report["reasons"].append(f"{plan['metric']} {value:.4f} is past the floor {floor:.4f}")
    report["verdict"] = verdict
    report["drifted"] = alerts
    return report
