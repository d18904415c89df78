"""Tools for work without a target: find_segments and detect_anomalies.

Thin on purpose: the work is in dsagent.tools.unsupervised (one task object per kind); these load
the session's data, call the task, save the model (skops) and write the records the other
deliverables read (unsupervised.json, evaluation.json, plots).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import Field

from dsagent.tools import paths
from dsagent.tools.registry import ToolContext, ToolOutput, artifact_path, tool
from dsagent.tools.unsupervised import RECORD


def _relative(ctx: ToolContext, path: str) -> str:
    return str(Path(path).resolve().relative_to(ctx.artifacts_dir.resolve()))


def _save(ctx: ToolContext, kind: str, model, X, record: dict[str, Any], manifest_extra: dict[str, Any],
          evaluation: dict[str, Any]) -> dict[str, str]:
    from dsagent.tools.model_io import input_schema, save_model

    manifest = {"task": kind, "model": record["method"], "target": record.get("label"),
                "input_schema": input_schema(X), **manifest_extra}
    save_model(model, artifact_path(ctx, paths.MODEL), manifest)
    artifact_path(ctx, RECORD).write_text(json.dumps(record, indent=1, default=float))
    # evaluation.json is what marks a run as finished (and what RunResult reads).
    artifact_path(ctx, paths.EVALUATION).write_text(json.dumps({"task": kind, "model": record["method"], **evaluation}, indent=1))
    return {"model": paths.MODEL, "record": RECORD, "evaluation": paths.EVALUATION}


@tool
def find_segments(ctx: ToolContext, n_segments: list[int] | None = Field(None, min_length=1, max_length=2)) -> ToolOutput:
    """Segment the rows (clustering; no target needed). Compares KMeans, Gaussian mixtures,
    agglomerative (small data) and HDBSCAN on scaled, encoded features; chooses the number of
    segments by silhouette, Calinski-Harabasz, bootstrap stability (adjusted Rand) and the gap
    statistic; describes
    each segment (size, the features that set it apart, a short name) with a PCA map and a profile
    plot; saves the model so `dsagent predict` assigns new rows a `segment` and `segment_distance`.

    Args:
        n_segments: [min, max] number of segments to consider (default: the answers' n_segments, else [2, 8]).
    """
    from dsagent.tools.data import load_dataset
    from dsagent.tools.unsupervised.describe import describe_segments, segment_plots
    from dsagent.tools.unsupervised.segment import ClusteringTask

    df, _ = load_dataset(ctx)
    answers = dict(ctx.answers) | ({"n_segments": n_segments} if n_segments else {})
    task = ClusteringTask(answers, seed=ctx.seed)
    fitted = task.fit(df, deadline=ctx.deadline and ctx.deadline - 20, progress=ctx.report)
    rec = fitted.record
    cols = rec["features"]["numeric"] + rec["features"]["categorical"]
    X = df[cols]
    rec["segments"] = describe_segments(X, fitted.labels, rec["features"])
    plots = segment_plots(fitted.Z, fitted.labels, rec["segments"], artifact_path(ctx, paths.PLOTS_DIR))
    rec["plots"] = {k: _relative(ctx, v) for k, v in plots.items()}
    rec["n_rows"] = int(len(df))
    files = _save(ctx, "clustering", fitted.model, X, rec,
                  {"label_map": rec["label_map"], "centroids": rec["centroids"], "segments": [
                      {k: s[k] for k in ("segment", "name", "share")} for s in rec["segments"]]},
                  {"metric": "silhouette", "test_score": rec["chosen"]["silhouette"], "baseline_score": None,
                   "greater_is_better": True, "k": rec["k"], "stability": rec["chosen"]["stability"]})
    summary = {"method": rec["method"], "k": rec["k"], "silhouette": rec["chosen"]["silhouette"],
               "stability_ari": rec["chosen"]["stability"], "candidates_scored": sum(1 for c in rec["candidates"] if c.get("silhouette") is not None),
               "segments": [{k: s[k] for k in ("segment", "name", "size")} for s in rec["segments"]],
               "dropped_columns": rec["features"]["dropped"]}
    return ToolOutput(summary=summary, record=rec, files=files | rec["plots"])


@tool
def detect_anomalies(ctx: ToolContext, expected_anomaly_rate: float | None = Field(None, gt=0, lt=0.5),
                     anomaly_label: str | None = None) -> ToolOutput:
    """Find unusual rows (anomaly detection; no target needed). Compares IsolationForest,
    LocalOutlierFactor (novelty mode), robust covariance where it fits and a robust z-score
    baseline, chosen without labels; sets the threshold from the expected anomaly rate (or an
    estimate); lists the top anomalies with the features that make each unusual; saves the model
    so `dsagent predict` gives `anomaly_score` and `is_anomaly`. A known-anomaly label column is
    used only to evaluate on held-out rows (ROC-AUC, average precision, precision@k), never to fit.

    Args:
        expected_anomaly_rate: share of rows expected to be anomalies (default: the answers', else estimated).
        anomaly_label: column of known anomalies, for evaluation only (default: the answers' anomaly_label).
    """
    from dsagent.tools.data import load_dataset
    from dsagent.tools.unsupervised.anomaly import AnomalyTask
    from dsagent.tools.unsupervised.describe import anomaly_reasons, score_plot

    df, _ = load_dataset(ctx)
    answers = dict(ctx.answers)
    if expected_anomaly_rate is not None:
        answers["expected_anomaly_rate"] = expected_anomaly_rate
    if anomaly_label:
        answers["anomaly_label"] = anomaly_label
    task = AnomalyTask(answers, seed=ctx.seed)
    fitted = task.fit(df, deadline=ctx.deadline and ctx.deadline - 20, progress=ctx.report)
    rec = fitted.record
    X = df[rec["features"]["numeric"] + rec["features"]["categorical"]]
    rec["top_anomalies"] = anomaly_reasons(X, fitted.scores, rec["features"])
    plot = score_plot(fitted.scores, rec["threshold"], artifact_path(ctx, paths.PLOTS_DIR))
    rec["plots"] = {"anomaly_scores": _relative(ctx, plot)}
    rec["n_rows"] = int(len(df))
    rec["flagged"] = int((fitted.scores >= rec["threshold"]).sum())
    ev = rec.get("evaluation") or {}
    base = (rec.get("detector_evaluation") or {}).get("robust_zscore", {})
    files = _save(ctx, "anomaly", fitted.model, X, rec, {"threshold": rec["threshold"], "expected_anomaly_rate": rec["expected_anomaly_rate"]},
                  {"metric": "average_precision" if "average_precision" in ev else None, "test_score": ev.get("average_precision"),
                   "baseline_score": base.get("average_precision") if "average_precision" in ev else None,
                   "greater_is_better": True, "threshold": rec["threshold"]})
    summary = {"method": rec["method"], "threshold": round(rec["threshold"], 5), "expected_anomaly_rate": rec["expected_anomaly_rate"],
               "rate_source": rec["rate_source"], "flagged_rows": rec["flagged"], "evaluation": ev or "no anomaly_label given",
               "top_anomalies": rec["top_anomalies"][:5]}
    return ToolOutput(summary=summary, record=rec, files=files | rec["plots"])
