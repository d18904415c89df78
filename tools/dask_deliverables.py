"""The explanation and the monitoring plan of a model trained on the cluster (train_on_cluster).

Both are computed in the tool worker from two samples train_on_cluster already collects: the
training sample the one-process families were fitted on (`sample_rows`), and a sample of the test
rows (TEST_SAMPLE rows, drawn in the same pass over the data that scores the models). Neither needs
the cluster again, and both are written where the in-memory workflow writes them
(explanation.json, monitoring.json/.md), so `dsagent monitor` applies the plan as usual.

- Explanation: permutation importance of the shipped model on the test sample (the drop in its
  metric when a column is shuffled, as explain_model), and XGBoost's own importances (total gain per
  feature, from the booster xgboost.dask trained on every row) whichever model shipped.
- Monitoring: reference distributions of the features from the training sample, of the shipped
  model's predictions on the test sample (out of sample), of the training labels, and a performance
  floor from the test score's CI computed on every test row (tools/monitor.build_plan).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools import paths
from dsagent.tools.registry import ToolContext, artifact_path
from dsagent.tools.schemas import Evaluation, Explanation, MonitoringPlan

TEST_SAMPLE = 20_000  # test rows brought to the tool worker for the explanation and the monitoring plan
EXPLAIN_ROWS, REPEATS = 5_000, 3


def model_predict(model: Any, X: pd.DataFrame, kind: str) -> np.ndarray:
    """Regression: values; classification: class probabilities (n, k). An XGBoost Booster or a
    scikit-learn estimator."""
    if hasattr(model, "inplace_predict"):
        out = np.asarray(model.inplace_predict(X))
        if kind == "binary" and out.ndim == 1:
            out = np.column_stack([1 - out, out])
        return out
    return model.predict(X) if kind == "regression" else model.predict_proba(X)


def loss(model: Any, X: pd.DataFrame, y: np.ndarray, kind: str) -> float:
    """The cluster run's metric on these rows: RMSE, or log loss on the label codes."""
    pred = model_predict(model, X, kind)
    if kind == "regression":
        return float(np.sqrt(np.mean((pred - y) ** 2)))
    proba = np.clip(pred, 1e-15, 1.0)
    return float(-np.log(proba[np.arange(len(y)), y.astype(int)]).mean())


def permutation_importance(model: Any, X: pd.DataFrame, y: np.ndarray, kind: str, seed: int) -> list[dict[str, Any]]:
    """Per column, the rise in the loss when its values are shuffled (mean and spread over REPEATS)."""
    rng = np.random.default_rng(seed)
    if len(X) > EXPLAIN_ROWS:
        at = np.sort(rng.choice(len(X), EXPLAIN_ROWS, replace=False))
        X, y = X.iloc[at], y[at]
    base = loss(model, X, y, kind)
    out = []
    for col in X.columns:
        drops = []
        for _ in range(REPEATS):
            shuffled = X.copy()
            shuffled[col] = X[col].to_numpy()[rng.permutation(len(X))]
            drops.append(loss(model, shuffled, y, kind) - base)
        out.append({"feature": str(col), "importance": round(float(np.mean(drops)), 6), "std": round(float(np.std(drops)), 6)})
    return sorted(out, key=lambda r: -r["importance"])


def booster_gain(booster: Any, features: list[str]) -> dict[str, float]:
    """XGBoost's total gain per feature, as shares of the whole (features it never split on: 0)."""
    gain = booster.get_score(importance_type="total_gain")
    total = sum(gain.values()) or 1.0
    return {f: round(float(gain.get(f, 0.0)) / total, 6) for f in features}


def write_explanation(ctx: ToolContext, best: str, models: dict[str, Any], kind: str, metric: str,
                      test_sample: pd.DataFrame, features: list[str], label: str) -> dict[str, Any]:
    X, y = test_sample[features], test_sample[label].to_numpy()
    perm = permutation_importance(models[best], X, y, kind, ctx.seed)
    gain = booster_gain(models["xgboost_dask"], features)
    Explanation(permutation_importance=perm, scoring=metric, rows=min(len(X), EXPLAIN_ROWS), repeats=REPEATS,
                model=best, booster_gain=dict(sorted(gain.items(), key=lambda kv: -kv[1])),
                computed_on=f"a sample of {min(len(X), EXPLAIN_ROWS):,} test rows (permutation importance of {best}); "
                            "total gain of the xgboost.dask booster trained on every training row").write(ctx.artifacts_dir)
    return {"top": [r["feature"] for r in perm[:5]], "rows": min(len(X), EXPLAIN_ROWS)}


def write_monitoring(ctx: ToolContext, target: str, kind: str, classes: list[Any], best: str, model: Any,
                     train_sample: pd.DataFrame, test_sample: pd.DataFrame, features: list[str], label: str) -> dict[str, Any]:
    from dsagent.tools.monitor import _prediction_reference, build_plan, plan_markdown
    from dsagent.tools.monitor_labels import label_reference

    ev = Evaluation.read(ctx.artifacts_dir)
    expl = Explanation.read(ctx.artifacts_dir)
    task = {"target": target, "task": kind, "classes": [str(c) for c in classes] or None}
    out = model_predict(model, test_sample[features], kind)
    pred, proba = (out, None) if kind == "regression" else (out.argmax(1), out)
    source = f"{len(test_sample):,} test-row predictions (a sample of the hash split's test rows)"
    kinds = {f: "numeric" for f in features}  # the cluster's features are numeric and boolean
    every = ctx.answers.get("retrain_every_days") or 90
    plan = build_plan(train_sample[features], kinds, task, ev.model_dump(), _prediction_reference(task, pred, proba) | {"source": source},
                      important=expl.important_features() if expl else None, latency_ms=ctx.answers.get("latency_ms"),
                      retrain_every_days=every, n_train=int(ev.n_train), n_test=int(ev.n_test),
                      labels=label_reference(task, train_sample[label].to_numpy()))
    plan["reference"] = (f"features: the {len(train_sample):,}-row training sample; predictions: {source}; the performance "
                         f"floor: the test CI over all {int(ev.n_test):,} test rows")
    MonitoringPlan.model_validate(plan).write(ctx.artifacts_dir)
    artifact_path(ctx, paths.MONITORING_MD).write_text(plan_markdown(plan), encoding="utf-8")
    return {"features_tracked": len(plan["features"]), "floor": plan["performance"]["floor"]}
