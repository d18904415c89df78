"""explain_model: which inputs drive the saved model — permutation importance on raw columns and,
for XGBoost, SHAP contributions (`pred_contribs`) on the encoded features."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools import paths, plots
from dsagent.tools.pdp import partial_dependence_plots
from dsagent.tools.model_io import load_model
from dsagent.tools.metrics import get_metric, score
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, tool
from dsagent.tools.schemas import Explanation, TaskSpec
from dsagent.tools.task_data import test_data
from dsagent.tools.cv import predict_any

MAX_CELLS_PER_CALL = 3_000_000  # raw cells in one stacked predict call (memory stays in the tens of MB)


def permutation_drops(model, X: pd.DataFrame, y: np.ndarray, task: TaskSpec, seed: int,
                      time_limit: float, max_repeats: int = 5) -> tuple[np.ndarray, int]:
    """Permutation importance of each raw column: (drop in the task metric per column and repeat,
    repeats done). The same quantity as sklearn's permutation_importance, computed with one
    predict call per block of columns instead of one per column: each call through the Pipeline
    costs tens of milliseconds before the first row (column checks, encoders), which made a
    79-column table take 10 s for a few hundred rows. Repeats continue while `time_limit` allows."""
    metric = get_metric(task["metric"], task["task"])
    pred, proba = predict_any(model, X, task)
    base = score(metric, y, pred, proba)
    sign = 1.0 if metric.greater_is_better else -1.0
    rng = np.random.default_rng(seed)
    n, columns = len(X), list(X.columns)
    per_call = max(1, MAX_CELLS_PER_CALL // max(n * len(columns), 1))
    drops: list[np.ndarray] = []
    started = time.perf_counter()
    while len(drops) < max_repeats:
        row = np.empty(len(columns))
        for first in range(0, len(columns), per_call):
            block = columns[first:first + per_call]
            frames = []
            for col in block:
                shuffled = X.copy()
                shuffled[col] = X[col].to_numpy()[rng.permutation(n)]
                frames.append(shuffled)
            p_pred, p_proba = predict_any(model, pd.concat(frames, ignore_index=True), task)
            for k in range(len(block)):
                rows = slice(k * n, (k + 1) * n)
                row[first + k] = sign * (base - score(metric, y, p_pred[rows], None if p_proba is None else p_proba[rows]))
        drops.append(row)
        spent = time.perf_counter() - started
        if spent / len(drops) * (len(drops) + 1) > time_limit:
            break
    return np.column_stack(drops), len(drops)


def derived_importance(model, X: pd.DataFrame, y: np.ndarray, task: TaskSpec, seed: int, repeats: int) -> list[dict[str, Any]]:
    """Permutation importance of each derived feature: the feature's values are shuffled after the
    model's own step computes them from the raw rows (no raw column holds them to shuffle)."""
    from dsagent.tools.derived import parse_feature
    from dsagent.tools.derived_step import shuffled

    parsed = [parse_feature(f) for f in (task.get("derived") or {}).get("features") or []]
    if not parsed:
        return []
    metric = get_metric(task["metric"], task["task"])
    base = score(metric, y, *predict_any(model, X, task))
    sign = 1.0 if metric.greater_is_better else -1.0
    rng = np.random.default_rng(seed + 1)
    out = []
    for p in parsed:
        drops = []
        for _ in range(max(1, repeats)):
            with shuffled(model, p.name, rng.permutation(len(X))):
                drops.append(sign * (base - score(metric, y, *predict_any(model, X, task))))
        out.append({"feature": p.name, "expression": p.expression, "importance": round(float(np.mean(drops)), 6),
                    "std": round(float(np.std(drops)), 6)})
    return sorted(out, key=lambda r: -r["importance"])


def _xgboost_pipeline(model):
    """(pipeline, label) of the XGBoost Pipeline inside the model: itself, or an ensemble member."""
    from dsagent.tools.features import final_estimator

    candidates = [("model", model)] + [(name, m) for name, m in getattr(model, "named_estimators_", {}).items()]
    for name, pipe in candidates:
        est = final_estimator(pipe)
        if est is not None and hasattr(est, "get_booster"):
            return pipe, name
    return None, None


def _shap_xgboost(pipeline, X, max_rows: int, seed: int,
                  time_limit: float = 5.0) -> tuple[dict[str, float] | None, str | None]:
    pipe, label = _xgboost_pipeline(pipeline)
    if pipe is None:
        return None, None
    import xgboost as xgb

    from dsagent.tools.features import final_estimator

    model = final_estimator(pipe)
    sample = X.sample(min(max_rows, len(X)), random_state=seed)
    encoded = pipe.named_steps["preprocess"].transform(sample)
    names = list(pipe.named_steps["preprocess"].get_feature_names_out())
    # Exact tree SHAP costs trees x leaves x depth^2 per row: time 100 rows, then take as many as
    # `time_limit` affords (a 600-round booster took 15 s on 2,000 rows).
    booster = model.get_booster()
    t0 = time.perf_counter()
    def contributions(start: int, stop: int) -> np.ndarray:
        # A DataFrame when categories are passed natively (dsagent.tools.features.Categories), else an array.
        block = encoded.iloc[start:stop] if hasattr(encoded, "iloc") else encoded[start:stop]
        return booster.predict(xgb.DMatrix(block, enable_categorical=True), pred_contribs=True)

    contribs = contributions(0, 100)
    per_row = (time.perf_counter() - t0) / min(100, encoded.shape[0])
    rows = int(min(encoded.shape[0], max(100, time_limit / max(per_row, 1e-9))))
    if rows > 100:  # the rest of the affordable rows; the first 100 are done
        contribs = np.concatenate([contribs, contributions(100, rows)])
    # Shapes: (rows, features+1) or (rows, classes, features+1) for multiclass; the last is the bias.
    magnitude = np.abs(contribs[..., :-1])
    if magnitude.ndim == 3:
        magnitude = magnitude.sum(axis=1)
    mean_abs = magnitude.mean(axis=0)
    return dict(sorted(zip(names, map(float, mean_abs)), key=lambda kv: -kv[1])), label


@tool
def explain_model(ctx: ToolContext, top_k: int = 15, max_rows: int = 2000) -> ToolOutput:
    """Explain the saved model: permutation importance of each raw input column (on the test split,
    with spread over repeats), for XGBoost models mean absolute SHAP contributions, and for free-text
    columns the words and word pairs that move predictions most per class (deleting them from held-out
    rows). Saves bar plots. Importance is association with predictions, not causation.

    Args:
        top_k: how many features to show.
        max_rows: rows sampled for the computation (speed).
    """
    model_path = ctx.artifacts_dir / paths.MODEL
    if not model_path.exists():
        raise ToolError("no saved model yet; call evaluate_model first")
    # When the shipped model was refitted on every labelled row it has seen the test rows the importance
    # is measured on: the scored model, the same configuration fitted on the training rows, has not.
    scored = ctx.artifacts_dir / paths.SCORED_MODEL
    model_path = scored if scored.exists() else model_path
    pipeline, manifest = load_model(model_path)
    X, y, task = test_data(ctx)
    if len(X) > max_rows:
        rng = np.random.default_rng(ctx.seed)
        idx = np.sort(rng.choice(len(X), max_rows, replace=False))
        X, y = X.iloc[idx], y[idx]
    # Time-boxed: a slice of what is left of the session budget. Rows shrink first when one pass
    # over the columns would not fit (each pass predicts columns x rows rows).
    allowance = min(30.0, max(2.0, 0.12 * ctx.seconds_left(120)))
    probe = pd.concat([X] * max(1, 2000 // max(len(X), 1)), ignore_index=True)  # big enough to swamp per-call costs
    t0 = time.perf_counter()
    predict_any(pipeline, probe, task)
    per_row = (time.perf_counter() - t0) / len(probe)
    affordable = int(allowance / 2 / max(per_row * X.shape[1], 1e-9))  # rows for one pass in half the allowance
    if affordable < len(X):
        keep = max(min(100, len(X)), affordable)
        idx = np.sort(np.random.default_rng(ctx.seed).choice(len(X), keep, replace=False))
        X, y = X.iloc[idx], y[idx]
    ctx.report(f"permutation importance ({len(X)} rows x {X.shape[1]} columns)", 0.2)
    drops, repeats = permutation_drops(pipeline, X, y, task, ctx.seed, allowance)
    mean, std = drops.mean(axis=1), drops.std(axis=1)
    order = np.argsort(-mean)
    perm = [{"feature": str(X.columns[i]), "importance": round(float(mean[i]), 6), "std": round(float(std[i]), 6)}
            for i in order]
    files = {"permutation_importance": f"{paths.PLOTS_DIR}/permutation_importance.png"}
    top = perm[:top_k]
    plots.importance([r["feature"] for r in top], [r["importance"] for r in top],
                     artifact_path(ctx, files["permutation_importance"]),
                     f"Permutation importance on the test split ({task['metric']})",
                     f"drop in {task['metric']} when the column is shuffled", [r["std"] for r in top])
    record: dict[str, Any] = {"permutation_importance": perm, "scoring": task["metric"], "rows": len(X), "repeats": repeats,
                              "derived_importance": derived_importance(pipeline, X, y, task, ctx.seed, repeats)}
    ctx.report("partial dependence of the top columns", 0.6)
    files["partial_dependence"] = f"{paths.PLOTS_DIR}/partial_dependence.png"
    record["partial_dependence"] = partial_dependence_plots(
        pipeline, X, [r["feature"] for r in perm if r["importance"] > 0], dict(task["features"]), task.get("classes"),
        task["task"], artifact_path(ctx, files["partial_dependence"]), ctx.seed,
        time_limit=min(10.0, max(1.0, 0.08 * ctx.seconds_left(120))))
    if record["partial_dependence"].pop("plot", None) is None:
        files.pop("partial_dependence")
    ctx.report("SHAP contributions", 0.7)
    shap, member = _shap_xgboost(pipeline, X, max_rows, ctx.seed, time_limit=min(10.0, max(1.0, 0.08 * ctx.seconds_left(120))))
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
    text_cols = [c for c, kind in task.features.items() if kind == "text" and c in X.columns]
    if text_cols:
        from dsagent.tools.text_explain import term_effects

        ctx.report("words that move the predictions", 0.85)
        limit = min(15.0, max(2.0, 0.08 * ctx.seconds_left(120))) / len(text_cols)
        record["text_terms"] = [term_effects(pipeline, X.iloc[:500], task, c, time_limit=limit) for c in text_cols]
    Explanation.model_validate(record).write(ctx.artifacts_dir)
    files["explanation"] = paths.EXPLANATION
    summary = {"top_features": top[:10], "shap_top": [{"feature": k, "mean_abs": round(v, 5)} for k, v in list((shap or {}).items())[:8]],
               "top_terms": {t["column"]: {d: [r["term"] for r in items[:5]] for d, items in t["effects"].items()}
                             for t in record.get("text_terms", [])},
               "derived_features": [{k: r[k] for k in ("feature", "importance")} for r in record["derived_importance"][:8]],
               "note": "permutation importance on held-out rows; correlated columns share importance", "plots": [
                   v for v in files.values() if v.endswith(".png")]}
    return ToolOutput(summary=summary, record=record, files=files)
