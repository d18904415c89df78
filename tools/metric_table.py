"""The metric table: each metric by name, its direction, whether it scores probabilities, and the
prediction shapes it fits. A library module with no registry import: the task types read it
(TaskType.metrics) and tools/metrics.py, which scores with it, reads the task types.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from sklearn import exceptions as skm_exceptions, metrics as skm


@dataclass(frozen=True)
class Metric:
    name: str
    greater_is_better: bool
    needs_proba: bool
    fn: Callable[..., float]
    tasks: tuple[str, ...]
    label: str


def _rmse(y, p):
    return float(np.sqrt(skm.mean_squared_error(y, p)))


def _binary_proba(fn):
    def score(y, proba, classes=None):
        return float(fn(y, proba[:, 1] if proba.ndim == 2 else proba))

    return score


def _log_loss(y, proba, classes=None):
    return float(skm.log_loss(y, proba, labels=np.arange(proba.shape[1]) if classes is None else classes))


def _multi_auc(y, proba, classes=None):
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=np.arange(proba.shape[1])))


METRICS: dict[str, Metric] = {
    "roc_auc": Metric("roc_auc", True, True, _binary_proba(skm.roc_auc_score), ("binary",), "ROC-AUC"),
    "pr_auc": Metric("pr_auc", True, True, _binary_proba(skm.average_precision_score), ("binary",), "PR-AUC (average precision)"),
    "log_loss": Metric("log_loss", False, True, _log_loss, ("binary", "multiclass"), "log-loss"),
    "roc_auc_ovr": Metric("roc_auc_ovr", True, True, _multi_auc, ("multiclass",), "ROC-AUC (one-vs-rest)"),
    "accuracy": Metric("accuracy", True, False, lambda y, p: float(skm.accuracy_score(y, p)), ("binary", "multiclass"), "accuracy"),
    "balanced_accuracy": Metric("balanced_accuracy", True, False, lambda y, p: float(skm.balanced_accuracy_score(y, p)),
                                ("binary", "multiclass"), "balanced accuracy"),
    "f1": Metric("f1", True, False, lambda y, p: float(skm.f1_score(y, p)), ("binary",), "F1"),
    "f1_macro": Metric("f1_macro", True, False, lambda y, p: float(skm.f1_score(y, p, average="macro")), ("multiclass",), "macro F1"),
    "precision": Metric("precision", True, False, lambda y, p: float(skm.precision_score(y, p, zero_division=0)), ("binary",), "precision"),
    "recall": Metric("recall", True, False, lambda y, p: float(skm.recall_score(y, p)), ("binary",), "recall"),
    "rmse": Metric("rmse", False, False, _rmse, ("regression",), "RMSE"),
    "mae": Metric("mae", False, False, lambda y, p: float(skm.mean_absolute_error(y, p)), ("regression",), "MAE"),
    "r2": Metric("r2", True, False, lambda y, p: float(skm.r2_score(y, p)), ("regression",), "R²"),
    "mape": Metric("mape", False, False, lambda y, p: float(skm.mean_absolute_percentage_error(y, p)), ("regression",), "MAPE"),
}
ALIASES = {"auc": "roc_auc", "average_precision": "pr_auc", "ap": "pr_auc", "logloss": "log_loss",
           "neg_log_loss": "log_loss", "mse": "rmse", "neg_root_mean_squared_error": "rmse"}


def defined_score(metric: Metric, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> float | None:
    """The metric on one sample, or None where the sample leaves it undefined. scikit-learn raises for
    some cases and for others warns and returns NaN (ROC-AUC on a segment with one class present):
    a NaN that reached a plot's axis limits stopped write_report on german_credit, whose test rows of
    one personal-status group were all of one class."""
    if metric.needs_proba and proba is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", skm_exceptions.UndefinedMetricWarning)
        try:
            value = float(metric.fn(y, np.asarray(proba, dtype=float) if metric.needs_proba else pred))
        except (ValueError, IndexError):
            return None
    return value if np.isfinite(value) else None


def scores_of(metrics: dict[str, Metric], y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> dict[str, float]:
    """Each of these metrics on one sample, skipping ones it leaves undefined (one class present...)."""
    out = {}
    for name, metric in metrics.items():
        value = defined_score(metric, y, pred, proba)
        if value is not None:
            out[name] = value
    return out
