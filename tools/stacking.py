"""Stacking on out-of-fold predictions (issue 18): a level-2 linear model learns how to combine
the top candidates' predictions, where the greedy blend (tools/ensemble.py) can only average them.

Level-2 inputs are the members' out-of-fold predictions, which build_ensemble already has: the
logit of P(positive) per member (binary), the log of every class probability per member
(multiclass), or the predicted values (regression). The level-2 model is a logistic regression
(classification) or a ridge regression with non-negative weights (regression: Breiman's stacked
regressions; free signs overfit collinear members). Its score is honest: each row's level-2
prediction comes from a level-2 model fitted on other folds' rows only (`level2_oof`).

The shipped model is one scikit-learn estimator of member Pipelines plus the level-2
coefficients, written in the spec {"family": "stack", "params": {"members": [spec, ...],
"names": [...], "coef": [[...]], "intercept": [...]}}: fitting it fits the members on the rows
given (as VotingClassifier does) and keeps the coefficients learned out of fold, so
`build_pipeline` rebuilds it from the spec alone and the saved model predicts on raw rows.

No tool module is imported here (the estimators are built by dsagent.tools.features).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone

from dsagent.tools import paths

LOGISTIC_C = 1.0  # level-2 inputs are a few log-probabilities per member: mild L2 is enough
RIDGE_ALPHA = 1.0  # on the target's standardised scale
EPS = 1e-6
MAX_MEMBERS = 5
MAX_ROWS = 10_000


def level2_inputs(kind: str, preds: list[np.ndarray]) -> np.ndarray:
    """The level-2 design matrix from the members' predictions (kind: binary | multiclass | regression)."""
    if kind == "regression":
        return np.column_stack([np.asarray(p, dtype=float) for p in preds])
    if kind == "binary":
        cols = [np.clip(np.asarray(p, dtype=float)[:, 1], EPS, 1 - EPS) for p in preds]
        return np.column_stack([np.log(c / (1 - c)) for c in cols])
    return np.hstack([np.log(np.clip(np.asarray(p, dtype=float), EPS, 1.0)) for p in preds])


def fit_level2(kind: str, Z: np.ndarray, y: np.ndarray, n_classes: int = 0, seed: int = 0) -> dict[str, list]:
    """{"coef": [[...]], "intercept": [...]}: plain lists, so the spec stays JSON. At most
    MAX_ROWS rows (a seeded sample): a few coefficients need no more, and the step stays short."""
    if len(y) > MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(y), MAX_ROWS, replace=False))
        Z, y = Z[keep], np.asarray(y)[keep]
    if kind == "regression":
        from sklearn.linear_model import Ridge

        y = np.asarray(y, dtype=float)
        mu, sd = float(y.mean()), float(y.std()) or 1.0
        model = Ridge(alpha=RIDGE_ALPHA, positive=True).fit((Z - mu) / sd, (y - mu) / sd)
        coef = np.asarray(model.coef_, dtype=float)
        # Back to the target's units: pred = mu + sd * b + coef . (Z - mu).
        return {"coef": [coef.tolist()], "intercept": [mu + sd * float(model.intercept_) - mu * float(coef.sum())]}
    from sklearn.linear_model import LogisticRegression

    # Standardised inputs: log-probabilities near a clipped 0 reach -14, and unscaled they took
    # lbfgs ~100 iterations where standardised ones take ~6 (measured on 2k-20k rows, 7 classes).
    mu, sd = Z.mean(axis=0), Z.std(axis=0)
    sd[sd < 1e-9] = 1.0
    model = LogisticRegression(C=LOGISTIC_C, max_iter=500).fit((Z - mu) / sd, y)
    if len(model.classes_) != n_classes:
        raise ValueError(f"level-2 training rows hold {len(model.classes_)} of {n_classes} classes")
    coef = np.asarray(model.coef_, dtype=float) / sd  # back to the raw inputs: w . (z - mu) / sd + b
    return {"coef": coef.tolist(), "intercept": (np.asarray(model.intercept_, dtype=float) - coef @ mu).tolist()}


def apply_level2(kind: str, Z: np.ndarray, coef: list, intercept: list) -> np.ndarray:
    """Regression values, or class probabilities (n rows x n classes)."""
    W, b = np.asarray(coef, dtype=float), np.asarray(intercept, dtype=float)
    if kind == "regression":
        return Z @ W[0] + b[0]
    if kind == "binary":
        p1 = 1.0 / (1.0 + np.exp(-np.clip(Z @ W[0] + b[0], -50, 50)))
        return np.column_stack([1 - p1, p1])
    logits = Z @ W.T + b
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def level2_oof(kind: str, Z: np.ndarray, y: np.ndarray, folds: list[np.ndarray], n_classes: int = 0,
               seed: int = 0) -> np.ndarray:
    """Level-2 predictions for every row, each from a level-2 model fitted without that row's fold.

    `folds` are the validation positions of the search's CV folds (the rows the members' OOF
    predictions cover); with fewer than 3 (a holdout), an inner 5-fold split of those rows is used."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if len(folds) < 3:
        idx = np.arange(len(y))
        stratify = kind != "regression" and np.bincount(y, minlength=n_classes).min() >= 5
        splitter = StratifiedKFold(5, shuffle=True, random_state=seed) if stratify else KFold(5, shuffle=True, random_state=seed)
        folds = [va for _, va in splitter.split(idx, y if stratify else None)]
    out = np.full(len(y), np.nan) if kind == "regression" else np.full((len(y), n_classes), np.nan)
    for va in folds:
        train = np.ones(len(y), dtype=bool)
        train[va] = False
        params = fit_level2(kind, Z[train], y[train], n_classes, seed)
        out[va] = apply_level2(kind, Z[va], params["coef"], params["intercept"])
    return out


def _member_proba(model, X, n_classes: int) -> np.ndarray:
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if proba.shape[1] != n_classes:  # a member fitted on rows that missed a class: its columns are the classes it saw
        full = np.zeros((len(proba), n_classes))
        full[:, np.asarray(model.classes_, dtype=int)] = proba
        proba = full
    return proba


class StackedClassifier(ClassifierMixin, BaseEstimator):
    """Member Pipelines (fitted by `fit`) combined by a logistic level-2 model learned out of fold."""

    def __init__(self, estimators: list | None = None, coef: list | None = None, intercept: list | None = None,
                 n_classes: int = 2):
        self.estimators = estimators
        self.coef = coef
        self.intercept = intercept
        self.n_classes = n_classes

    def fit(self, X, y):
        self.named_estimators_ = {name: clone(est).fit(X, y) for name, est in self.estimators}
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X) -> np.ndarray:
        kind = "binary" if self.n_classes == 2 else "multiclass"
        preds = [_member_proba(m, X, self.n_classes) for m in self.named_estimators_.values()]
        return apply_level2(kind, level2_inputs(kind, preds), self.coef, self.intercept)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class StackedRegressor(RegressorMixin, BaseEstimator):
    """Member Pipelines (fitted by `fit`) combined by non-negative ridge weights learned out of fold."""

    def __init__(self, estimators: list | None = None, coef: list | None = None, intercept: list | None = None):
        self.estimators = estimators
        self.coef = coef
        self.intercept = intercept

    def fit(self, X, y):
        self.named_estimators_ = {name: clone(est).fit(X, y) for name, est in self.estimators}
        return self

    def predict(self, X) -> np.ndarray:
        preds = [np.asarray(m.predict(X), dtype=float) for m in self.named_estimators_.values()]
        return apply_level2("regression", level2_inputs("regression", preds), self.coef, self.intercept)


def make_stack(members: list[tuple[str, Any]], params: dict[str, Any], regression: bool, n_classes: int):
    """The unfitted stacked estimator of (name, Pipeline) members and the spec's coefficients."""
    if regression:
        return StackedRegressor(members, params["coef"], params["intercept"])
    return StackedClassifier(members, params["coef"], params["intercept"], n_classes)


def write_stacking_record(ctx, record: dict[str, Any]) -> None:
    """stacking.json: what the report says about stacking (tried, kept, why)."""
    (ctx.artifacts_dir / paths.STACKING).write_text(json.dumps(record, indent=1))


def stacking_markdown(record: dict[str, Any] | None) -> list[str]:
    """The report's line on stacking (empty when build_ensemble did not run)."""
    if not record:
        return []
    if not record.get("tried"):
        return [f"Stacking (a level-2 model on the candidates' out-of-fold predictions) was not tried: {record['reason']}.", ""]
    members = ", ".join(record.get("members") or [])
    verdict = "kept" if record.get("kept") else "not kept"
    return [f"Stacking of {members} (a level-2 linear model on their out-of-fold predictions, scored by its own "
            f"cross-validation) was tried and {verdict}: {record['reason']}.", ""]
