"""explain_model: which inputs drive the saved model — permutation importance on raw columns and,
for XGBoost, SHAP contributions (`pred_contribs`) on the encoded features."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tools import paths, plots
from tools.model_io import load_model
from tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, tool
from tools.task import test_data

SCORERS = {"roc_auc": "roc_auc", "pr_auc": "average_precision", "log_loss": "neg_log_loss", "accuracy": "accuracy",
           "balanced_accuracy": "balanced_accuracy", "f1": "f1", "f1_macro": "f1_macro", "roc_auc_ovr": "roc_auc_ovr",
           "precision": "precision", "recall": "recall", "rmse": "neg_root_mean_squared_error",
           "mae": "neg_mean_absolute_error", "r2": "r2", "mape": "neg_mean_absolute_percentage_error"}


def _xgboost_pipeline(model):
    """(pipeline, label) of the XGBoost Pipeline inside the model: itself, or an ensemble member."""
    from tools.features import final_estimator

    candidates = [("model", model)] + [(name, m) for name, m in getattr(model, "named_estimators_", {}).items()]
    for name, pipe in candidates:
        est = final_estimator(pipe)
        if est is not None and hasattr(est, "get_booster"):
            return pipe, name
    return None, None


def _shap_xgboost(pipeline, X, max_rows: int, seed: int) -> tuple[dict[str, float] | None, str | None]:
    pipe, label = _xgboost_pipeline(pipeline)
    if pipe is None:
        return None, None
    import xgboost as xgb

    from tools.features import final_estimator

    model = final_estimator(pipe)
    sample = X.sample(min(max_rows, len(X)), random_state=seed)
    encoded = pipe.named_steps["preprocess"].transform(sample)
    names = list(pipe.named_steps["preprocess"].get_feature_names_out())
    contribs = model.get_booster().predict(xgb.DMatrix(encoded), pred_contribs=True)
    # Shapes: (rows, features+1) or (rows, classes, features+1) for multiclass; the last is the bias.
    magnitude = np.abs(contribs[..., :-1])
    if magnitude.ndim == 3:
        magnitude = magnitude.sum(axis=1)
    mean_abs = magnitude.mean(axis=0)
    return dict(sorted(zip(names, map(float, mean_abs)), key=lambda kv: -kv[1])), label


@tool
def explain_model(ctx: ToolContext, top_k: int = 15, max_rows: int = 2000) -> ToolOutput:
    """Explain the saved model: permutation importance of each raw input column (on the test split,
    with spread over repeats) and, for XGBoost models, mean absolute SHAP contributions. Saves bar
    plots. Importance is association with predictions, not causation.

    Args:
        top_k: how many features to show.
        max_rows: rows sampled for the computation (speed).
    """
    from sklearn.inspection import permutation_importance

    model_path = ctx.artifacts_dir / paths.MODEL
    if not model_path.exists():
        raise ToolError("no saved model yet; call evaluate_model first")
    pipeline, manifest = load_model(model_path)
    X, y, task = test_data(ctx)
    if len(X) > max_rows:
        rng = np.random.default_rng(ctx.seed)
        idx = np.sort(rng.choice(len(X), max_rows, replace=False))
        X, y = X.iloc[idx], y[idx]
    scoring = SCORERS.get(task["metric"], None)
    if task["task"] == "multiclass" and scoring in ("roc_auc", "neg_log_loss"):
        scoring = "neg_log_loss"
    # Time-boxed: one prediction is timed, then rows and repeats shrink so that
    # columns x repeats predictions fit in a slice of what is left of the session budget.
    import time

    t0 = time.perf_counter()
    pipeline.predict(X)
    one = max(time.perf_counter() - t0, 1e-4)
    allowance = min(30.0, max(3.0, 0.15 * ctx.seconds_left(120)))
    repeats = int(min(5, max(1, allowance // (one * X.shape[1]))))
    if one * X.shape[1] * repeats > allowance:
        keep = max(200, int(len(X) * allowance / (one * X.shape[1] * repeats)))
        if keep < len(X):
            idx = np.sort(np.random.default_rng(ctx.seed).choice(len(X), keep, replace=False))
            X, y = X.iloc[idx], y[idx]
    ctx.report(f"permutation importance ({len(X)} rows x {repeats} repeats)", 0.2)
    result = permutation_importance(pipeline, X, y, scoring=scoring, n_repeats=repeats, random_state=ctx.seed, n_jobs=1)
    order = np.argsort(-result.importances_mean)
    perm = [{"feature": str(X.columns[i]), "importance": round(float(result.importances_mean[i]), 6),
             "std": round(float(result.importances_std[i]), 6)} for i in order]
    files = {"permutation_importance": f"{paths.PLOTS_DIR}/permutation_importance.png"}
    top = perm[:top_k]
    plots.importance([r["feature"] for r in top], [r["importance"] for r in top],
                     artifact_path(ctx, files["permutation_importance"]),
                     f"Permutation importance on the test split ({task['metric']})",
                     f"drop in {task['metric']} when the column is shuffled", [r["std"] for r in top])
    record: dict[str, Any] = {"permutation_importance": perm, "scoring": scoring, "rows": len(X), "repeats": repeats}
    ctx.report("SHAP contributions", 0.7)
    shap, member = _shap_xgboost(pipeline, X, max_rows, ctx.seed)
    if shap:
        record["shap_mean_abs"] = shap
        record["shap_model"] = member if member != "model" else "the model"
        names = list(shap)[:top_k]
        files["shap"] = f"{paths.PLOTS_DIR}/shap_importance.png"
        title = "Mean |SHAP contribution| (XGBoost, encoded features)"
        if member != "model":
            title = f"Mean |SHAP contribution| (ensemble member {member})"
        plots.importance(names, [shap[n] for n in names], artifact_path(ctx, files["shap"]),
                         title, "mean |contribution| to the margin")
    artifact_path(ctx, paths.EXPLANATION).write_text(json.dumps(record, indent=1))
    files["explanation"] = paths.EXPLANATION
    summary = {"top_features": top[:10], "shap_top": [{"feature": k, "mean_abs": round(v, 5)} for k, v in list((shap or {}).items())[:8]],
               "note": "permutation importance on held-out rows; correlated columns share importance", "plots": [
                   v for v in files.values() if v.endswith(".png")]}
    return ToolOutput(summary=summary, record=record, files=files)
