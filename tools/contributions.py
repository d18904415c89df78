"""Per-row explanations: how much each feature moved one prediction, and by which method.

- XGBoost models: exact TreeSHAP contributions from XGBoost itself (`pred_contribs`, the same
  algorithm as SHAP's TreeExplainer), on the model's encoded features, in margin units (log-odds
  for classifiers).
- Linear models: exact contributions coefficient x encoded value, in margin units; with the
  intercept they add up to the model's decision function.
- Anything else (forests, histogram boosting, MLPs, ensembles): sampled Shapley values on the raw
  columns (Strumbelj & Kononenko's permutation sampling against background rows from the
  training data), in units of the prediction (the explained class's probability for
  classifiers). They add up exactly to prediction - base_value; each one is an estimate.
  The `shap` package is not a dependency (it brings numba and llvmlite); XGBoost's own TreeSHAP
  covers the tree family the autopilot ships most.

Every table has `base_value` and one `contrib_<feature>` column per feature; classifiers also
get `explained_class`. Binary classifiers explain the positive class, multiclass the predicted one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.features import final_estimator
from dsagent.tools.task_types import shape_type

MAX_HYBRID_ROWS = 200_000  # rows the sampled method scores in one call (memory and time stay small)
MAX_PERMUTATIONS = 32


def _classes_to_explain(manifest: dict[str, Any], proba: np.ndarray) -> np.ndarray:
    if shape_type(manifest["task"]).thresholded:  # two classes: the positive one
        return np.ones(len(proba), dtype=int)
    return proba.argmax(axis=1)


def _encoded(pipe, X: pd.DataFrame) -> tuple[Any, list[str]]:
    pre = pipe.named_steps["preprocess"]
    encoded = pre.transform(X)
    if hasattr(encoded, "toarray"):
        encoded = encoded.toarray()
    return encoded, [str(n) for n in pre.get_feature_names_out()]


def _pick(values: np.ndarray, cls: np.ndarray | None) -> np.ndarray:
    """(rows, features) from (rows, classes, features) at each row's explained class."""
    if values.ndim == 3:
        return values[np.arange(len(values)), cls]
    return values


def _xgboost(pipe, est, X, manifest, proba) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import xgboost as xgb

    encoded, names = _encoded(pipe, X)
    contribs = est.get_booster().predict(xgb.DMatrix(encoded, enable_categorical=True), pred_contribs=True)
    cls = _classes_to_explain(manifest, proba) if proba is not None else None
    if contribs.ndim == 3:  # multiclass: (rows, classes, features + bias)
        contribs = _pick(contribs, cls)
    return contribs[:, :-1], contribs[:, -1], names


def _linear(pipe, est, X, manifest, proba) -> tuple[np.ndarray, np.ndarray, list[str]]:
    encoded, names = _encoded(pipe, X)
    encoded = np.asarray(encoded, dtype=float)
    coef = np.atleast_2d(np.asarray(est.coef_, dtype=float))
    intercept = np.atleast_1d(np.asarray(est.intercept_, dtype=float))
    if coef.shape[0] == 1:  # regression, or binary (the positive class's log-odds)
        return encoded * coef[0], np.full(len(encoded), intercept[0]), names
    cls = _classes_to_explain(manifest, proba)
    return encoded * coef[cls], intercept[cls], names


def sampled_shapley(f, X: pd.DataFrame, background: pd.DataFrame, seed: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """(contributions (rows, columns), base values, permutations per row) of `f` (rows -> one
    number per row, evaluated on hybrid rows; `f` gets the index of the row each hybrid belongs to).

    For each row and permutation a background row z is drawn and the row's values replace z's
    one column at a time in the permutation's order; each step's change in f is that column's
    contribution. All hybrids go through f in one call."""
    n, p = X.shape
    m = int(max(2, min(MAX_PERMUTATIONS, MAX_HYBRID_ROWS // max(n * (p + 1), 1))))
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((n, m, p)), axis=2)  # (rows, perms, step) -> column
    z = rng.integers(0, len(background), (n, m))
    rank = np.argsort(perms, axis=2)  # (rows, perms, column) -> step at which the column turns to x
    steps = np.arange(p + 1)
    use_x = rank[:, :, None, :] < steps[None, None, :, None]  # (rows, perms, steps, columns)
    row_of = np.broadcast_to(np.arange(n)[:, None, None], (n, m, p + 1)).ravel()
    bg_of = np.broadcast_to(z[:, :, None], (n, m, p + 1)).ravel()
    use_x = use_x.reshape(-1, p)
    hybrid = {}
    for j, col in enumerate(X.columns):
        xv, bv = X[col].to_numpy(dtype=object)[row_of], background[col].to_numpy(dtype=object)[bg_of]
        hybrid[col] = pd.Series(np.where(use_x[:, j], xv, bv)).astype(X[col].dtype)
    values = np.asarray(f(pd.DataFrame(hybrid), row_of), dtype=float).reshape(n, m, p + 1)
    steps_delta = np.diff(values, axis=2)  # (rows, perms, step)
    contrib = np.zeros((n, m, p))
    np.put_along_axis(contrib, perms, steps_delta, axis=2)
    return contrib.mean(axis=1), values[:, :, 0].mean(axis=1), m


def explain_rows(model, manifest: dict[str, Any], X: pd.DataFrame, background: pd.DataFrame | None = None,
                 seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(one row of contributions per row of X, in order; what they are). X has been through
    dsagent.tools.serving.check_schema."""
    shape, classes = shape_type(manifest["task"]), manifest.get("classes") or []  # the shape, for a plugin task too
    proba = None if shape.regression else np.asarray(model.predict_proba(X), dtype=float)
    est = final_estimator(model)
    info: dict[str, Any]
    if est is not None and hasattr(est, "get_booster"):
        values, base, names = _xgboost(model, est, X, manifest, proba)
        info = {"method": "xgboost TreeSHAP (exact)", "explains": "the margin (log-odds)" if proba is not None
                else "the prediction", "space": "encoded features"}
    elif est is not None and hasattr(est, "coef_") and hasattr(est, "intercept_"):
        values, base, names = _linear(model, est, X, manifest, proba)
        info = {"method": "linear coefficients x values (exact)", "explains": "the log-odds" if proba is not None
                else "the prediction", "space": "encoded features"}
    else:
        bg = background if background is not None and len(background) else X
        cls = _classes_to_explain(manifest, proba) if proba is not None else None

        def f(rows: pd.DataFrame, row_of: np.ndarray) -> np.ndarray:
            if cls is None:
                return np.asarray(model.predict(rows), dtype=float)
            return np.asarray(model.predict_proba(rows), dtype=float)[np.arange(len(rows)), cls[row_of]]

        values, base, perms = sampled_shapley(f, X, bg[list(X.columns)], seed)
        names = list(X.columns)
        info = {"method": f"sampled Shapley values (model-agnostic; {perms} permutations per row, "
                          f"{len(bg)} background rows)", "explains": "the probability of the explained class"
                if proba is not None else "the prediction", "space": "raw columns"}
    if est is not None and shape.regression and hasattr(model.named_steps["model"], "regressor_") \
            and info["space"] == "encoded features":
        info["explains"] = "the prediction on the model's transformed target scale (log1p)"
    out = pd.DataFrame(index=X.index)
    if proba is not None:
        out["explained_class"] = [classes[i] for i in _classes_to_explain(manifest, proba)]
    out["base_value"] = base
    for j, name in enumerate(names):
        out[f"contrib_{name}"] = values[:, j]
    info.update(features=names, additive=True)
    return out, info


def background_rows(session: dict[str, Any], manifest: dict[str, Any], n: int = 100, seed: int = 0) -> pd.DataFrame | None:
    """Up to `n` rows of the session's training data (for the model-agnostic method), or None."""
    from dsagent.tools.data import load_table
    from dsagent.tools.serving import check_schema

    path = session.get("data_path")
    if not path:
        return None
    try:
        data, _ = load_table(path)
        X = check_schema(manifest, data, lambda _w: None)
    except Exception:  # the training file moved or changed: the rows being explained serve instead
        return None
    return X.sample(min(n, len(X)), random_state=seed).reset_index(drop=True)


def explain_frame(model_ref, data: pd.DataFrame, *, version: str | None = None, warn=print,
                  seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """`dsagent explain`: predictions and contributions of each row of `data`, in order."""
    from dsagent.tools.model_io import load_model, resolve_model_path, session_meta
    from dsagent.tools.serving import check_schema, score_rows

    path = resolve_model_path(model_ref, version)
    model, manifest = load_model(path)
    X = check_schema(manifest, data, warn)
    contributions, info = explain_rows(model, manifest, X, background_rows(session_meta(path), manifest), seed)
    return pd.concat([score_rows(model, manifest, X), contributions], axis=1).reset_index(drop=True), info
