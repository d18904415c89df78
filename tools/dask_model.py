"""The model a cluster run ships (train_on_cluster): an estimator that predicts on raw rows without
a cluster, saved like every other dsagent model (skops + manifest), and its evaluation.json.

The XGBoost model trained by xgboost.dask becomes a plain `xgboost.XGBClassifier`/`XGBRegressor`
loaded from the booster's own JSON model (the same trees; `dsagent predict`, `serve` and
`monitor` need no Dask). A sample-trained family ships as the scikit-learn Pipeline it is. Either
way it takes the feature columns by name: the manifest's input schema is the features', so
`dsagent predict` checks and orders the columns before the model sees them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from dsagent.tools import paths
from dsagent.tools.model_io import input_schema, save_model
from dsagent.tools.registry import ToolContext, artifact_path
from dsagent.tools.schemas import Evaluation


def in_memory_xgboost(booster: Any, kind: str) -> Any:
    """xgboost.dask's trees in the plain scikit-learn wrapper, through XGBoost's JSON model (the wrapper
    reads the objective and the class count from it)."""
    import xgboost

    plain = xgboost.XGBRegressor() if kind == "regression" else xgboost.XGBClassifier()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "model.json")
        booster.save_model(path)
        plain.load_model(path)
    return plain


def ship_model(ctx: ToolContext, target: str, name: str, model: Any, kind: str, classes: list[Any],
               X_sample: pd.DataFrame, results: dict[str, dict[str, Any]], metric: str,
               seen: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Save the chosen model (model/model.skops + manifest) and evaluation.json; returns what was shipped."""
    estimator = in_memory_xgboost(model, kind) if name == "xgboost_dask" else model
    family = "xgboost" if name == "xgboost_dask" else "linear" if name.startswith("linear") else "hist_gradient_boosting"
    scored = results[name]
    manifest = {
        "target": target, "task": kind, "classes": list(classes), "positive_class": None, "threshold": None,
        "metric": metric, "model": name, "family": family, "params": {}, "input_schema": input_schema(X_sample.head(5000)),
        "dropped_columns": [], "session_dir": str(ctx.session_dir), "trained_on_cluster": True,
        "rows_seen": seen[name]["rows"],
    }
    save_model(estimator, artifact_path(ctx, paths.MODEL), manifest)
    other = {k: v for k, v in scored.items() if k not in ("ci", metric)}
    Evaluation(model=name, family=family, metric=metric, greater_is_better=False, test_score=scored[metric],
               test_ci=scored["ci"], baseline_score=results["baseline"][metric], test_metrics=other,
               n_test=seen["test"]["rows"], n_train=seen[name]["rows"],
               files={"model": paths.MODEL, "manifest": paths.MODEL_MANIFEST}).write(ctx.artifacts_dir)
    return {"model": name, "family": family, "file": paths.MODEL, "rows_seen": seen[name]["rows"]}
