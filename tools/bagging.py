"""Bagged final models (issue 18, AutoGluon's main device): instead of one refit on every
training row, the chosen configuration is fitted on each of k folds' training rows and the k
models' predictions are averaged. No refit-size guess (XGBoost's rounds, say) carries over from
the folds to a bigger fit, every row is used by k-1 of the models, and the average is smoother
than any one of them.

The folds are drawn from the training rows, the seed and k alone (stratified for classification),
so the notebook rebuilds the same models with `fit_bagged`. The bag is a scikit-learn estimator
of Pipelines: the saved model still predicts on raw rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from dsagent.tools.features import build_pipeline
from dsagent.tools.opt_in import BAG_FOLDS
from dsagent.tools.task_types import prediction_of

DEFAULT_FOLDS = BAG_FOLDS


class BaggedClassifier(ClassifierMixin, BaseEstimator):
    """The mean of fitted classifier Pipelines' probabilities (classes are the codes 0..n-1)."""

    def __init__(self, models: list | None = None, n_classes: int = 2):
        self.models = models
        self.n_classes = n_classes

    def fit(self, X, y=None):  # the members come fitted (fit_bagged): nothing to learn here
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X) -> np.ndarray:
        total = np.zeros((len(X), self.n_classes))
        for model in self.models:
            proba = np.asarray(model.predict_proba(X), dtype=float)
            if proba.shape[1] != self.n_classes:  # a fold that missed a class: its columns are the classes it saw
                full = np.zeros((len(X), self.n_classes))
                full[:, np.asarray(model.classes_, dtype=int)] = proba
                proba = full
            total += proba
        return total / len(self.models)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class BaggedRegressor(RegressorMixin, BaseEstimator):
    """The mean of fitted regressor Pipelines' predictions."""

    def __init__(self, models: list | None = None):
        self.models = models

    def fit(self, X, y=None):
        return self

    def predict(self, X) -> np.ndarray:
        return np.mean([np.asarray(m.predict(X), dtype=float) for m in self.models], axis=0)


def bag_folds(y: np.ndarray, task: str, folds: int, seed: int) -> list[np.ndarray]:
    """Each member's training positions: k-fold (stratified for classification when every class
    has k rows), shuffled with the seed."""
    from sklearn.model_selection import KFold, StratifiedKFold

    idx = np.arange(len(y))
    if prediction_of(task) != "regression" and np.bincount(y).min() >= folds:
        return [tr for tr, _ in StratifiedKFold(folds, shuffle=True, random_state=seed).split(idx, y)]
    return [tr for tr, _ in KFold(folds, shuffle=True, random_state=seed).split(idx)]


def fit_bagged(spec: dict[str, Any], kinds: dict[str, str], X: pd.DataFrame, y: np.ndarray, task: str, seed: int,
               n_classes: int = 2, folds: int = DEFAULT_FOLDS, derived: dict[str, Any] | None = None):
    """k Pipelines of `spec`, one per fold's training rows, averaged into one estimator."""
    y = np.asarray(y)
    models = []
    for rows in bag_folds(y, task, folds, seed):
        X_fold = X.iloc[rows]
        models.append(build_pipeline(spec, kinds, X_fold, task, seed, n_classes, derived).fit(X_fold, y[rows]))
    if prediction_of(task) == "regression":
        return BaggedRegressor(models).fit(X, y)
    return BaggedClassifier(models, n_classes).fit(X, y)


def bagging_plan(split_kind: str, est_refit_s: float, max_fit_s: float | None, folds: int = DEFAULT_FOLDS) -> str | None:
    """Why the final model cannot be bagged here (None: it can). A bag costs about k-1 refits on
    all rows; a time or group split has no honest shuffled folds."""
    if split_kind not in ("stratified", "random"):
        return f"a {split_kind} split: shuffled folds would mix what the split keeps apart"
    cost = est_refit_s * (folds - 1)
    if max_fit_s is not None and cost > max_fit_s:
        return f"{folds} fold models would take ~{cost:.1f}s, more than the {max_fit_s:.1f}s the final fit may take"
    return None
