"""Monitoring for segments and anomaly flags (plan_monitoring and `dsagent monitor` dispatch here).

Features drift as for the supervised tasks (PSI confirmed by a two-sample test, the same
thresholds, dsagent.tools.monitor). On top: for a segmentation, the share of new rows in each
segment (PSI against the training shares, confirmed by chi-squared); for anomaly detection, the
share of rows flagged against the rate the threshold was set at (a one-sided binomial test, so a
batch of 60 rows with two flags is not an alarm). Verdicts: a moved segment mix or flag rate means
investigate (3); a large move (PSI >= 0.25 / rate >= 3x expected, both significant) with feature
drift behind it means the segments or the threshold no longer describe the data: retrain (4).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from dsagent.tools import paths
from dsagent.tools.markdown import md_cell
from dsagent.tools.drift import (MIN_BATCH_ROWS, P_VALUE, PSI_ALERT, PSI_WARN, VERDICT_EXIT, _chi2_p, _feature_drift,
                                 categorical_reference, check_batch, numeric_reference, psi, worse)
from dsagent.tools.registry import ToolContext, ToolOutput, artifact_path

RATE_RETRAIN = 3.0  # flag rate this many times the expected one (and significant): the threshold no longer fits


def build_plan(rec: dict[str, Any], X: pd.DataFrame, preds: pd.DataFrame, retrain_every_days: int) -> dict[str, Any]:
    f = rec["features"]
    features = {c: numeric_reference(X[c]) for c in f["numeric"]} | {c: categorical_reference(X[c]) for c in f["categorical"]}
    plan: dict[str, Any] = {
        "version": 1, "task": rec["task"], "target": None, "reference_rows": int(len(X)), "features": features,
        "thresholds": {"psi_warn": PSI_WARN, "psi_alert": PSI_ALERT, "p_value": P_VALUE, "null_rate_increase": 0.1,
                       "unseen_category_share": 0.05, "range_margin": 0.1, "out_of_range_share": 0.01,
                       "drifted_feature_share_for_retrain": 0.3, "min_batch_rows": MIN_BATCH_ROWS, "rate_retrain_ratio": RATE_RETRAIN},
        "schedule": {"check_every": "each scored batch, at least weekly", "retrain_every_days": retrain_every_days},
    }
    if rec["task"] == "clustering":
        counts = preds["segment"].value_counts()
        segs = sorted(counts.index.tolist())
        plan["segments"] = {"ids": [int(s) for s in segs], "counts": [int(counts[s]) for s in segs],
                            "shares": [float(counts[s] / len(preds)) for s in segs],
                            "names": {str(s["segment"]): s["name"] for s in rec["segments"]}}
        plan["retraining_triggers"] = [
            f"segment mix: PSI of segment shares >= {PSI_ALERT} (chi-squared p < {P_VALUE}) together with feature drift",
            f"drift: PSI >= {PSI_ALERT} (with p < {P_VALUE}) on at least 30% of the features",
            f"schedule: every {retrain_every_days} days, re-segment and compare with the current segments (adjusted Rand)"]
    else:
        plan["anomaly_rate"] = {"expected": rec["expected_anomaly_rate"], "reference": float(preds["is_anomaly"].mean()),
                                "threshold": rec["threshold"]}
        plan["retraining_triggers"] = [
            f"flag rate: the share flagged on a batch is significantly above {rec['expected_anomaly_rate']:.1%} "
            f"(binomial p < {P_VALUE}): investigate; {RATE_RETRAIN:g}x or more with feature drift: retrain",
            f"drift: PSI >= {PSI_ALERT} (with p < {P_VALUE}) on at least 30% of the features",
            f"schedule: every {retrain_every_days} days, refit on recent rows and review the top flags"]
    return plan


def plan_markdown(plan: dict[str, Any]) -> str:
    lines = ["# Monitoring plan", "", f"Task: {plan['task']}. Reference: {plan['reference_rows']} rows.", "",
             "`dsagent monitor SESSION NEW_DATA` applies this plan: exit 0 ok, 3 investigate, 4 retrain.", "", "## Triggers", ""]
    lines += [f"- {t}" for t in plan["retraining_triggers"]] + [""]
    if "segments" in plan:
        lines += ["## Segment shares at training", "", "| segment | name | share |", "|---|---|---|"]
        for s, share in zip(plan["segments"]["ids"], plan["segments"]["shares"]):
            lines.append(f"| {s} | {md_cell(plan['segments']['names'].get(str(s), ''), 60)} | {share:.1%} |")
    else:
        a = plan["anomaly_rate"]
        lines += ["## Flag rate", "", f"- Expected {a['expected']:.2%}; flagged at training {a['reference']:.2%}; "
                  f"threshold {a['threshold']:.4g}."]
    lines += ["", "## Features tracked", "", ", ".join(f"`{md_cell(c, 40)}`" for c in plan["features"]), ""]
    return "\n".join(lines)


def write_plan(ctx: ToolContext, rec: dict[str, Any], retrain_every_days: int) -> ToolOutput:
    from dsagent.tools.data import load_dataset
    from dsagent.tools.model_io import load_model
    from dsagent.tools.serving import predict_frame

    df, _ = load_dataset(ctx)
    model, manifest = load_model(ctx.artifacts_dir / paths.MODEL)
    preds = predict_frame(model, manifest, df, warn=lambda _m: None)
    plan = build_plan(rec, df, preds, retrain_every_days)
    artifact_path(ctx, paths.MONITORING).write_text(json.dumps(plan, indent=1))
    artifact_path(ctx, paths.MONITORING_MD).write_text(plan_markdown(plan), encoding="utf-8")
    return ToolOutput(summary={"features_tracked": len(plan["features"]), "triggers": plan["retraining_triggers"]},
                      files={"monitoring": paths.MONITORING, "monitoring_md": paths.MONITORING_MD})


def _segment_check(plan: dict[str, Any], preds: pd.DataFrame, report: dict[str, Any]) -> str:
    ref = plan["segments"]
    counts = preds["segment"].value_counts()
    new = np.array([counts.get(s, 0) for s in ref["ids"]] + [int((~preds["segment"].isin(ref["ids"])).sum())], dtype=float)
    ref_counts = np.array(ref["counts"] + [0], dtype=float)
    value = psi(np.array(ref["shares"] + [0.0]), new / max(new.sum(), 1))
    p = _chi2_p(ref_counts, new)
    significant = p is not None and p < P_VALUE
    status = "alert" if value >= PSI_ALERT and significant else "warn" if value >= PSI_WARN else "ok"
    report["segments"] = {"psi": round(value, 4), "p_value": None if p is None else float(f"{p:.3g}"), "status": status,
                          "shares": {str(s): round(float(counts.get(s, 0) / len(preds)), 4) for s in ref["ids"]},
                          "reference_shares": {str(s): round(v, 4) for s, v in zip(ref["ids"], ref["shares"])}}
    if status == "alert":
        report["reasons"].append(f"segment mix moved: PSI {value:.2f} (p {p:.2g})")
        return "retrain" if report["drifted"] else "investigate"
    if status == "warn":
        report["notes"].append(f"segment mix moved a little: PSI {value:.2f}")
    return "ok"


def _rate_check(plan: dict[str, Any], preds: pd.DataFrame, report: dict[str, Any]) -> str:
    expected = float(plan["anomaly_rate"]["expected"])
    n, k = len(preds), int(preds["is_anomaly"].sum())
    p = float(stats.binomtest(k, n, expected, alternative="greater").pvalue)
    rate = k / n
    status = "alert" if p < P_VALUE else "ok"
    report["anomaly_rate"] = {"rate": round(rate, 4), "expected": expected, "flagged": k, "rows": n,
                              "p_value": float(f"{p:.3g}"), "status": status}
    if status == "ok":
        return "ok"
    report["reasons"].append(f"flag rate {rate:.1%} on {n} rows vs {expected:.1%} expected (binomial p {p:.2g})")
    return "retrain" if rate >= plan["thresholds"]["rate_retrain_ratio"] * expected and report["drifted"] else "investigate"


def apply(plan: dict[str, Any], model, manifest: dict[str, Any], data: pd.DataFrame) -> dict[str, Any]:
    from dsagent.tools.serving import predict_frame

    t = plan["thresholds"]
    check_batch(plan, data)
    report: dict[str, Any] = {"task": plan["task"], "rows": len(data), "features": {}, "quality": [], "reasons": [], "notes": []}
    if len(data) < t["min_batch_rows"]:
        report["notes"].append(f"only {len(data)} rows: drift estimates are unreliable below {t['min_batch_rows']} rows")
    for col, ref in plan["features"].items():
        report["features"][col] = _feature_drift(ref, data[col], t, report["quality"], col)
    report["drifted"] = [c for c, e in report["features"].items() if e["status"] == "alert"]
    verdict = "ok"
    if report["drifted"]:
        verdict = "investigate"
        report["reasons"].append("feature drift in: " + ", ".join(f"{c} (PSI {report['features'][c]['psi']:.2f})" for c in report["drifted"]))
    if report["quality"]:
        verdict = "investigate"
        report["reasons"].append(f"{len(report['quality'])} data-quality violation(s): " + "; ".join(report["quality"][:3]))
    if len(report["drifted"]) >= t["drifted_feature_share_for_retrain"] * max(len(plan["features"]), 1):
        verdict = "retrain"
        report["reasons"].append(f"{len(report['drifted'])} of {len(plan['features'])} features drifted")
    preds = predict_frame(model, manifest, data, warn=lambda _m: None)
    verdict = worse(verdict, _segment_check(plan, preds, report) if plan["task"] == "clustering" else _rate_check(plan, preds, report))
    report["verdict"] = verdict
    report["exit_code"] = VERDICT_EXIT[verdict]
    return report
