"""Profiling, the target: which task a target column implies, whether it can be one, its facts;
and leakage: how well one column alone predicts the target on held-out rows (a post-outcome field
nearly does)."""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.data import DataError
from dsagent.tools.profile_columns import (LEAK_EXACT_MAX, LEAK_SAMPLE, MAX_CLASSES_LISTED, MULTICLASS_MAX_INT_LEVELS,
                                           _numeric_facts, _py, _short)
from dsagent.tools.task_types import shape_type


# ---------------------------------------------------------------------------------------------
# Target


def infer_task(y: pd.Series) -> str:
    """"binary" | "multiclass" | "regression" from the labelled values of a target column."""
    yy = y.dropna()
    n_unique = int(yy.nunique())
    if n_unique <= 2:
        return "binary"
    if pd.api.types.is_bool_dtype(yy.dtype):
        return "binary"
    if pd.api.types.is_numeric_dtype(yy.dtype):
        a = yy.to_numpy(dtype="float64")
        a = a[np.isfinite(a)]
        if np.all(a == np.floor(a)) and n_unique <= MULTICLASS_MAX_INT_LEVELS:
            return "multiclass"
        return "regression"
    return "multiclass"


def check_target(df: pd.DataFrame, target: str) -> str:
    """Validate a target column and return its task. Raises DataError (one line) when the
    column is missing, all-missing, constant, single-class or ID-like."""
    cols = [str(c) for c in df.columns]
    if target not in df.columns:
        lower = {c.lower(): c for c in cols}
        close = [lower[target.lower()]] if target.lower() in lower else difflib.get_close_matches(target, cols, n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
        shown = ", ".join(cols[:12]) + (f", ... ({len(cols)} columns)" if len(cols) > 12 else "")
        raise DataError(f"target column {target!r} not found; {hint}columns are: {shown}")
    y = df[target]
    n_lab = int(y.notna().sum())
    if n_lab == 0:
        raise DataError(f"target column {target!r} is entirely missing (no labelled rows); choose a column with values to predict")
    n_unique = int(y.nunique(dropna=True))
    if n_unique == 1:
        value = _short(y.dropna().iloc[0])
        if pd.api.types.is_numeric_dtype(y.dtype) and not pd.api.types.is_bool_dtype(y.dtype):
            raise DataError(
                f"target column {target!r} is constant (every one of {n_lab} labelled rows is {value!r}); "
                "there is nothing to learn — choose another target"
            )
        raise DataError(
            f"target column {target!r} has a single class ({value!r} in all {n_lab} labelled rows); "
            "a classifier needs at least two classes — add rows of the other classes or choose another target"
        )
    numeric = pd.api.types.is_numeric_dtype(y.dtype) or pd.api.types.is_bool_dtype(y.dtype)
    if not numeric and n_unique == n_lab and n_lab >= 10:
        raise DataError(
            f"target column {target!r} looks like an identifier (all {n_lab} values are unique and non-numeric); "
            "choose the column you want to predict"
        )
    return infer_task(y)


def _target_facts(df: pd.DataFrame, target: str, task: str, answered_task: str | None) -> dict[str, Any]:
    y = df[target]
    n_missing = int(y.isna().sum())
    yy = y.dropna()
    out: dict[str, Any] = {"name": target, "task": answered_task or task, "inferred_task": task,
                           "n_missing": n_missing, "n_labelled": int(len(yy)), "dtype": str(y.dtype),
                           "n_classes": None, "classes": None, "class_counts": None, "minority_frac": None,
                           "skew": None}
    shape = shape_type(answered_task or task)
    if shape.classification:
        vc = yy.value_counts()
        out["n_classes"] = int(len(vc))
        listed = vc.iloc[:MAX_CLASSES_LISTED]
        out["classes"] = [_py(k) for k in listed.index]
        out["class_counts"] = {str(_py(k)): int(v) for k, v in listed.items()}
        out["minority_frac"] = float(vc.iloc[-1] / len(yy))
        out["majority_frac"] = float(vc.iloc[0] / len(yy))
        out["minority_class"] = _py(vc.index[-1])
        out["smallest_class_count"] = int(vc.iloc[-1])
    if pd.api.types.is_numeric_dtype(yy.dtype) and not pd.api.types.is_bool_dtype(yy.dtype):
        facts = _numeric_facts(yy.to_numpy(dtype="float64"))
        out["skew"] = facts.get("skew")
        if shape.regression:
            out.update({k: facts.get(k) for k in ("min", "max", "mean", "std", "median", "q1", "q3", "n_unique")})
            out["outlier_frac"] = facts.get("outlier_frac")
    return out


# ---------------------------------------------------------------------------------------------
# Leakage: how well does one column alone predict the target (on held-out rows)?


def _codes_for(x: pd.Series) -> np.ndarray:
    codes, _ = pd.factorize(x, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    codes[codes < 0] = codes.max() + 1 if len(codes) else 0
    return codes


def _score_codes(codes: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, classif: bool, k: int) -> float:
    ncode = int(codes.max()) + 1
    ctr, cte = codes[tr], codes[te]
    if classif:
        counts = np.bincount(ctr * k + y[tr], minlength=ncode * k).reshape(ncode, k)
        majority = int(np.bincount(y[tr], minlength=k).argmax())
        seen = counts.sum(1) > 0
        pred = np.where(seen[cte], counts.argmax(1)[cte], majority)
        return _norm_acc(pred, y[te], majority)
    sums = np.bincount(ctr, weights=y[tr], minlength=ncode)
    cnt = np.bincount(ctr, minlength=ncode)
    mean = np.where(cnt > 0, sums / np.maximum(cnt, 1), y[tr].mean())
    return _r2(y[te], mean[cte])


def _score_nn(x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, classif: bool, k: int) -> float:
    """1-nearest-neighbour on one numeric feature: near-perfect only for near-deterministic links."""
    xtr, ytr, xte = x[tr], y[tr], x[te]
    ftr = np.isfinite(xtr)
    if ftr.sum() < 2:
        return 0.0
    order = np.argsort(xtr[ftr], kind="stable")
    xs, ys = xtr[ftr][order], ytr[ftr][order]
    fte = np.isfinite(xte)
    pos = np.searchsorted(xs, np.where(fte, xte, 0.0))
    left = np.clip(pos - 1, 0, len(xs) - 1)
    right = np.clip(pos, 0, len(xs) - 1)
    xq = np.where(fte, xte, 0.0)
    choose = np.where(np.abs(xq - xs[left]) < np.abs(xs[right] - xq), left, right)
    pred = ys[choose].astype(float)
    # Missing values form their own group: predicted by the train rows that are missing too.
    if classif:
        majority = int(np.bincount(ytr, minlength=k).argmax())
        miss_tr = ~ftr
        miss_pred = int(np.bincount(ytr[miss_tr], minlength=k).argmax()) if miss_tr.any() else majority
        pred = np.where(fte, pred, miss_pred).astype(np.int64)
        return _norm_acc(pred, y[te], majority)
    miss_tr = ~ftr
    miss_pred = float(ytr[miss_tr].mean()) if miss_tr.any() else float(ytr.mean())
    pred = np.where(fte, pred, miss_pred)
    return _r2(y[te], pred)


def _norm_acc(pred: np.ndarray, truth: np.ndarray, majority: int) -> float:
    acc = float(np.mean(pred == truth))
    base = float(np.mean(truth == majority))
    return 0.0 if base >= 1.0 else max(0.0, (acc - base) / (1.0 - base))


def _r2(truth: np.ndarray, pred: np.ndarray) -> float:
    sst = float(np.sum((truth - truth.mean()) ** 2))
    if sst <= 0:
        return 0.0
    return max(0.0, 1.0 - float(np.sum((truth - pred) ** 2)) / sst)


def _screen_numeric(X: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, classif: bool, k: int,
                    bins: int = 32) -> np.ndarray:
    """Held-out score of every column of X at once: rank-based bins (missing = own bin) -> the
    majority class (or mean) per bin on train rows, scored on test rows."""
    s, p = X.shape
    nan = np.isnan(X)
    order = np.argsort(np.where(nan, np.inf, X), axis=0, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(s)[:, None], axis=0)
    cnt = np.maximum((~nan).sum(0), 1)
    codes = np.where(nan, bins, np.minimum((ranks * bins) // cnt, bins - 1))
    nb = bins + 1
    offs = np.arange(p) * nb
    ctr, cte = codes[tr] + offs, codes[te] + offs
    if classif:
        counts = np.bincount((ctr * k + y[tr][:, None]).ravel(), minlength=p * nb * k).reshape(p * nb, k)
        majority = int(np.bincount(y[tr], minlength=k).argmax())
        pred = np.where(counts.sum(1) > 0, counts.argmax(1), majority)
        acc = (pred[cte] == y[te][:, None]).mean(0)
        base = float(np.mean(y[te] == majority))
        return np.zeros(p) if base >= 1 else np.clip((acc - base) / (1 - base), 0, 1)
    sums = np.bincount(ctr.ravel(), weights=np.repeat(y[tr], p), minlength=p * nb)
    cn = np.bincount(ctr.ravel(), minlength=p * nb)
    means = np.where(cn > 0, sums / np.maximum(cn, 1), y[tr].mean())
    yt = y[te]
    sst = float(((yt - yt.mean()) ** 2).sum())
    if sst <= 0:
        return np.zeros(p)
    return np.clip(1 - ((yt[:, None] - means[cte]) ** 2).sum(0) / sst, 0, 1)


def _single_feature_scores(df: pd.DataFrame, target: str, task: str, facts: list[dict[str, Any]],
                           seed: int) -> list[dict[str, Any]]:
    y_all = df[target]
    lab = np.flatnonzero(y_all.notna().to_numpy())
    if len(lab) < 20:
        return []
    rng = np.random.default_rng(seed)
    idx = rng.choice(lab, size=LEAK_SAMPLE, replace=False) if len(lab) > LEAK_SAMPLE else rng.permutation(lab)
    sub = df.take(idx)
    half = len(idx) // 2
    tr, te = np.arange(half), np.arange(half, len(idx))
    classif = shape_type(task).classification
    if classif:
        yc, classes = pd.factorize(sub[target])
        y = yc.astype(np.int64)
        k = len(classes)
    else:
        y = sub[target].to_numpy(dtype="float64")
        k = 0
    positions = {f["name"]: i for i, f in enumerate(facts)}
    candidates = [f for f in facts if f["name"] != target and f["kind"] != "constant"]
    plain = [f for f in candidates if f["_base"] == "numeric" and not f["dtype"].startswith("timedelta")]
    scores = []
    exact = candidates
    if len(plain) > LEAK_EXACT_MAX:
        # Very wide: a vectorised binned screen scores every numeric column; only the best
        # LEAK_EXACT_MAX of them (and all non-numeric columns) get the exact per-column check.
        X = sub.iloc[:, [positions[f["name"]] for f in plain]].to_numpy(dtype="float64", na_value=np.nan)
        screen = _screen_numeric(X, y, tr, te, classif, k)
        order = np.argsort(-screen, kind="stable")
        keep = {plain[j]["name"] for j in order[:LEAK_EXACT_MAX]}
        for j in order[LEAK_EXACT_MAX:]:
            scores.append({"column": plain[j]["name"], "score": round(float(screen[j]), 4), "method": "binned-screen",
                           "kind": plain[j]["kind"]})
        plain_names = {f["name"] for f in plain}
        exact = [f for f in candidates if f["name"] in keep or f["name"] not in plain_names]
    for f in exact:
        name = f["name"]
        x = sub.iloc[:, positions[name]]
        method = "groups"
        if f["_base"] in ("numeric", "datetime") and f.get("n_unique", 0) > 64:
            if f["_base"] == "datetime":
                xv = pd.to_numeric(x.astype("int64").where(x.notna()), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
            elif pd.api.types.is_timedelta64_dtype(x.dtype):
                xv = x.dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
            else:
                xv = x.to_numpy(dtype="float64", na_value=np.nan)
            score = _score_nn(xv, y, tr, te, classif, k)
            method = "nearest-value"
            if not classif:
                fin = np.isfinite(xv)
                if fin.sum() > 10 and np.std(xv[fin]) > 0 and np.std(y[fin]) > 0:
                    score = max(score, float(np.corrcoef(xv[fin], y[fin])[0, 1] ** 2))
        else:
            score = _score_codes(_codes_for(x), y, tr, te, classif, k)
        scores.append({"column": name, "score": round(score, 4), "method": method, "kind": f["kind"]})
    scores.sort(key=lambda d: -d["score"])
    return scores
