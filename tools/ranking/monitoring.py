"""Monitoring a ranker (`dsagent monitor SESSION batch.csv` dispatches here through the task type).

Features drift as for every task (PSI confirmed by a two-sample test: dsagent.tools.monitor). On
top: the score distribution against the test groups' scores (PSI + KS test), and, when the batch
carries the relevance column, NDCG@k per batch against the test CI: below the CI's lower bound
by more than the tolerance is a retrain; a drifted score alone is investigate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.markdown import md_cell
from dsagent.tools.monitor import (MIN_BATCH_ROWS, P_VALUE, PSI_ALERT, PSI_WARN, VERDICT_EXIT, _feature_drift, check_batch,
                                   categorical_reference, numeric_reference, worse)

NDCG_TOLERANCE = 0.02  # NDCG below the test CI's lower bound by more than this: the ranking got worse


def build_plan(rec: dict[str, Any], ev: dict[str, Any], X: pd.DataFrame, test_scores: np.ndarray,
               retrain_every_days: int) -> dict[str, Any]:
    features = {c: numeric_reference(X[c]) for c in rec["numeric"]} | {c: categorical_reference(X[c]) for c in rec["categorical"]}
    t = ev["test"]
    floor = float((t.get("ndcg_ci") or [t["ndcg"]])[0]) - NDCG_TOLERANCE
    return {
        "version": 1, "task": "ranking", "target": rec["target"], "group_column": rec["group_column"], "k": rec["k"],
        "relevance_threshold": rec["relevance_threshold"], "reference_rows": int(len(X)), "features": features,
        "score": numeric_reference(pd.Series(test_scores)), "test_ndcg": t["ndcg"], "ndcg_floor": floor,
        "thresholds": {"psi_warn": PSI_WARN, "psi_alert": PSI_ALERT, "p_value": P_VALUE, "null_rate_increase": 0.1,
                       "unseen_category_share": 0.05, "range_margin": 0.1, "out_of_range_share": 0.01,
                       "drifted_feature_share_for_retrain": 0.3, "min_batch_rows": MIN_BATCH_ROWS},
        "schedule": {"check_every": "each scored batch, at least weekly", "retrain_every_days": retrain_every_days},
        "retraining_triggers": [
            f"quality: with labels, NDCG@{rec['k']} of a batch below {floor:.4f} (the test CI's lower bound - {NDCG_TOLERANCE})",
            f"score drift: PSI of the scores >= {PSI_ALERT} (KS p < {P_VALUE}) together with feature drift",
            f"drift: PSI >= {PSI_ALERT} (with p < {P_VALUE}) on at least 30% of the features",
            f"schedule: every {retrain_every_days} days, refit on recent labelled groups and compare on the same test groups"],
    }


def plan_markdown(plan: dict[str, Any]) -> str:
    lines = ["# Monitoring plan", "", f"Task: ranking `{md_cell(plan['target'], 40)}` within `{md_cell(plan['group_column'], 40)}`. "
             f"Reference: {plan['reference_rows']} training rows; test NDCG@{plan['k']} {plan['test_ndcg']:.4f}.", "",
             "`dsagent monitor SESSION NEW_DATA` applies this plan: exit 0 ok, 3 investigate, 4 retrain. With the relevance "
             "column in the batch it also scores NDCG per batch.", "", "## Triggers", ""]
    lines += [f"- {t}" for t in plan["retraining_triggers"]]
    lines += ["", "## Features tracked", "", ", ".join(f"`{md_cell(c, 40)}`" for c in plan["features"]) or "(none)", ""]
    return "\n".join(lines)


def apply(plan: dict[str, Any], model, manifest: dict[str, Any], data: pd.DataFrame) -> dict[str, Any]:
    from dsagent.tools.ranking.metrics import score_groups
    from dsagent.tools.ranking.task import grades_of, predict
    from dsagent.tools.serving import check_schema

    t = plan["thresholds"]
    check_batch(plan, data)
    report: dict[str, Any] = {"task": "ranking", "rows": len(data), "features": {}, "quality": [], "reasons": [], "notes": []}
    if len(data) < t["min_batch_rows"]:
        report["notes"].append(f"only {len(data)} rows: drift estimates are unreliable below {t['min_batch_rows']} rows")
    for col, ref in plan["features"].items():
        report["features"][col] = _feature_drift(ref, data[col], t, report["quality"], col)
    drifted = [c for c, e in report["features"].items() if e["status"] == "alert"]
    verdict = "ok"
    if drifted:
        verdict = "investigate"
        report["reasons"].append("feature drift in: " + ", ".join(drifted))
    if len(drifted) >= t["drifted_feature_share_for_retrain"] * max(len(plan["features"]), 1):
        verdict = "retrain"
    preds = predict(model, manifest, check_schema(manifest, data, lambda _m: None))
    score = _feature_drift(plan["score"], preds["score"], t, [], "score")
    report["prediction"] = score | {"of": "score"}
    if score["status"] == "alert":
        report["reasons"].append(f"the score distribution moved (PSI {score['psi']:.2f})")
        verdict = worse(verdict, "retrain" if drifted else "investigate")
    if plan["target"] in data.columns and data[plan["target"]].notna().any():
        lab = data[plan["target"]].notna()
        g, _ = grades_of(data.loc[lab, plan["target"]])
        s = score_groups(g, preds.loc[lab, "score"], data.loc[lab, plan["group_column"]].astype(str), plan["k"],
                         plan["relevance_threshold"], n_boot=200)
        check = {"metric": f"ndcg@{plan['k']}", "rows": int(lab.sum()), "value": s["ndcg"], "ci": s.get("ndcg_ci"),
                 "floor": plan["ndcg_floor"], "test_score": plan["test_ndcg"], "groups": s["groups"]}
        report["performance"] = {"checks": [check]}
        if s["ndcg"] == s["ndcg"] and s["ndcg"] < plan["ndcg_floor"]:
            report["reasons"].append(f"NDCG@{plan['k']} {s['ndcg']:.4f} on {s['groups']} labelled groups is below the floor "
                                     f"{plan['ndcg_floor']:.4f}")
            verdict = "retrain"
    report["verdict"] = verdict
    report["exit_code"] = VERDICT_EXIT[verdict]
    return report
