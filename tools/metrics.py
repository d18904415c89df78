"""Metrics by name, with their direction, and bootstrap confidence intervals."""

from __future__ import annotations

import numpy as np

from dsagent.tools.metric_table import ALIASES, METRICS, Metric, scores_of
from dsagent.tools.registry import ToolError


def task_metrics(task: str) -> dict[str, Metric]:
    """The metrics that apply to a task: its task type says (a plugin's may bring its own)."""
    from dsagent.tools.task_types import task_types

    tt = task_types().get(task)
    return tt.metrics() if tt is not None else {n: m for n, m in METRICS.items() if task in m.tasks}


def get_metric(name: str, task: str) -> Metric:
    key = ALIASES.get(name.lower(), name.lower())
    if key == "roc_auc" and task == "multiclass":
        key = "roc_auc_ovr"
    ok = task_metrics(task)
    if key not in METRICS and key not in ok:
        raise ToolError(f"unknown metric {name!r}; choose one of {', '.join({**METRICS, **ok})}")
    if key not in ok:
        raise ToolError(f"metric {key} does not fit a {task} task; choose one of {', '.join(ok)}")
    return ok[key]


def score(metric: Metric, y_true: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> float:
    if metric.needs_proba:
        if proba is None:
            raise ToolError(f"metric {metric.name} needs predicted probabilities")
        # float64 always: XGBoost returns float32, and scikit-learn's log_loss then computes in float32,
        # 6e-8 away from the float64 score of the same model (lme4's InstEval: the notebook's check failed).
        return metric.fn(y_true, np.asarray(proba, dtype=float))
    return metric.fn(y_true, pred)


def all_scores(task: str, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None) -> dict[str, float]:
    """Every metric that applies to the task (skipping ones undefined on this sample)."""
    return scores_of(task_metrics(task), y, pred, proba)


def _rowwise(metric: Metric, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None):
    """(per-row values, finish) for metrics that are a function of a mean over rows, else None."""
    name = metric.name
    if name == "log_loss" and proba is not None:
        p = np.clip(proba[np.arange(len(y)), y.astype(int)], np.finfo(float).eps, 1.0)
        return -np.log(p), lambda m: m
    if name == "rmse":
        return (y - pred) ** 2, np.sqrt
    if name == "mae":
        return np.abs(y - pred), lambda m: m
    if name == "accuracy":
        return (y == pred).astype(float), lambda m: m
    if name == "mape":  # scikit-learn's definition: |y - p| / max(|y|, eps)
        return np.abs(y - pred) / np.maximum(np.abs(y), np.finfo(np.float64).eps), lambda m: m
    return None


# Metrics _resampled_counts computes for many resamples at once.
COUNTED = ("r2", "precision", "recall", "f1", "f1_macro", "balanced_accuracy")


def _resampled_counts(metric: Metric, y: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> np.ndarray | None:
    """Label metrics (precision, recall, F1, balanced accuracy) and R² for many resamples at once;
    idx[b] holds the rows of resample b. Same definitions as scikit-learn (zero_division=0)."""
    name = metric.name
    if name == "r2":
        yy, err = y[idx].astype(float), (y[idx] - pred[idx]).astype(float)
        total = ((yy - yy.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, 1 - (err ** 2).sum(axis=1) / total, np.nan)
    if name not in COUNTED:
        return None
    yy, pp = y[idx], pred[idx]
    labels = [1] if name in ("precision", "recall", "f1") else np.unique(np.concatenate([y, pred]))
    per_class = []
    for c in labels:
        tp = ((yy == c) & (pp == c)).sum(axis=1).astype(float)
        fp = ((yy != c) & (pp == c)).sum(axis=1)
        fn = ((yy == c) & (pp != c)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            if name == "precision":
                per_class.append(np.where(tp + fp > 0, tp / (tp + fp), 0.0))
            elif name == "recall":
                per_class.append(np.where(tp + fn > 0, tp / (tp + fn), 0.0))
            elif name == "balanced_accuracy":  # mean recall over the classes present in the resample
                per_class.append(np.where(tp + fn > 0, tp / (tp + fn), np.nan))
            else:  # F1 over the labels present in y or pred of the resample, as scikit-learn does
                per_class.append(np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan))
    stacked = np.vstack(per_class)
    if name in ("precision", "recall"):
        return stacked[0]
    if name == "f1":
        return np.nan_to_num(stacked[0])
    with np.errstate(invalid="ignore"):
        return np.nanmean(stacked, axis=0)


def _weighted_rank_metric(metric: Metric, y: np.ndarray, s: np.ndarray, weights: np.ndarray) -> np.ndarray | None:
    """ROC-AUC / average precision for many resamples at once; weights[b, i] = times row i is drawn.

    The rows are sorted by score once; ties share a group, as in scikit-learn."""
    if metric.name not in ("roc_auc", "pr_auc"):
        return None
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    group = np.concatenate([[0], np.cumsum(s_sorted[1:] != s_sorted[:-1])])
    pos = (y[order] == 1).astype(float)
    w = weights[:, order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])  # group is sorted: sum each run of ties
    wpos = np.add.reduceat(w * pos, starts, axis=1)
    wneg = np.add.reduceat(w * (1 - pos), starts, axis=1)
    total_pos, total_neg = wpos.sum(axis=1), wneg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric.name == "roc_auc":  # groups sorted by descending score: negatives ranked below come later
            neg_below = total_neg[:, None] - np.cumsum(wneg, axis=1)
            auc = (wpos * (neg_below + 0.5 * wneg)).sum(axis=1) / (total_pos * total_neg)
            return np.where((total_pos > 0) & (total_neg > 0), auc, np.nan)
        tp, fp = np.cumsum(wpos, axis=1), np.cumsum(wneg, axis=1)
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        ap = (wpos / total_pos[:, None] * precision).sum(axis=1)
        return np.where(total_pos > 0, ap, np.nan)


def _weighted_ovr_auc(y: np.ndarray, proba: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Multiclass one-vs-rest ROC-AUC (scikit-learn's macro average) for many resamples at once: the
    mean over classes of each class's binary AUC; NaN for a resample that misses a class, which
    scikit-learn refuses. Called per resample it cost ~5 ms, so on a small multiclass test split
    each CI of it ran to its time limit (1-2 s, in evaluate, the report and the monitoring plan)."""
    auc = METRICS["roc_auc"]
    per_class = [_weighted_rank_metric(auc, (y == c).astype(int), proba[:, c], weights) for c in range(proba.shape[1])]
    return np.mean(per_class, axis=0)


def resampled_scores(metric: Metric, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, rows: np.ndarray,
                     n: int, rng: np.random.Generator) -> np.ndarray | None:
    """The metric on `n` bootstrap resamples of `rows` (positions into y/pred/proba), NaN where a
    resample cannot be scored; None for a metric with no vectorised form (resample it one by one)."""
    y, pred, proba = y[rows], pred[rows], None if proba is None else proba[rows]
    m = len(y)
    if m < 2:
        return None
    rowwise = _rowwise(metric, y, pred, proba)
    binary = proba[:, 1] if proba is not None and proba.ndim == 2 and proba.shape[1] == 2 else None
    ovr = metric.name == "roc_auc_ovr" and proba is not None and proba.ndim == 2
    if rowwise is None and metric.name not in COUNTED and not ovr and not (metric.name in ("roc_auc", "pr_auc") and binary is not None):
        return None
    parts = []
    chunk = max(1, min(n, int(2e6 // m)))  # at most ~2M drawn positions in memory at once
    for lo in range(0, n, chunk):
        k = min(chunk, n - lo)
        idx = rng.integers(0, m, (k, m))
        if rowwise is not None:
            values, finish = rowwise
            parts.append(finish(values[idx].mean(axis=1)))
        elif metric.name in COUNTED:
            parts.append(_resampled_counts(metric, y, pred, idx))
        else:
            flat = (np.arange(k)[:, None] * m + idx).ravel()
            weights = np.bincount(flat, minlength=k * m).reshape(k, m).astype(float)
            parts.append(_weighted_ovr_auc(y, proba, weights) if ovr else _weighted_rank_metric(metric, y, binary, weights))
    return np.concatenate(parts).astype(float)


def bootstrap_ci(
    metric: Metric, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, *, n: int = 1000, seed: int = 0,
    alpha: float = 0.05, time_limit: float = 10.0,
) -> tuple[float, float] | None:
    """Percentile bootstrap CI of a test metric (resampling test rows).

    Vectorised for the usual metrics (row-mean metrics, label counts, R², ROC-AUC, PR-AUC, one-vs-rest
    ROC-AUC): 1,000 resamples of
    tens of thousands of rows take a second, where calling scikit-learn per resample took ~50 ms
    each. Other metrics resample one by one within `time_limit`."""
    import time

    rng = np.random.default_rng(seed)
    m = len(y)
    if m < 2:
        return None
    rowwise = _rowwise(metric, y, pred, proba)
    binary_scores = proba[:, 1] if proba is not None and proba.ndim == 2 and proba.shape[1] == 2 else None
    start = time.monotonic()
    counted = metric.name in COUNTED
    ovr = metric.name == "roc_auc_ovr" and proba is not None and proba.ndim == 2
    if rowwise is not None or counted or ovr or (metric.name in ("roc_auc", "pr_auc") and binary_scores is not None):
        stats_parts = []
        chunk = max(1, min(n, int(2e6 // max(m, 1))))
        for lo in range(0, n, chunk):
            idx = rng.integers(0, m, (min(chunk, n - lo), m))
            if rowwise is not None:
                values, finish = rowwise
                stats_parts.append(finish(values[idx].mean(axis=1)))
            elif counted:
                stats_parts.append(_resampled_counts(metric, y, pred, idx))
            else:
                flat = (np.arange(len(idx))[:, None] * m + idx).ravel()
                weights = np.bincount(flat, minlength=len(idx) * m).reshape(len(idx), m).astype(float)
                stats_parts.append(_weighted_ovr_auc(y, proba, weights) if ovr
                                   else _weighted_rank_metric(metric, y, binary_scores, weights))
            if time.monotonic() - start > time_limit and sum(map(len, stats_parts)) >= 200:
                break
        stats = np.concatenate(stats_parts)
        stats = stats[np.isfinite(stats)]
    else:
        collected = []
        for _ in range(n):
            idx = rng.integers(0, m, m)
            try:
                collected.append(score(metric, y[idx], pred[idx], None if proba is None else proba[idx]))
            except ValueError:  # a resample with a single class: skip it
                continue
            if time.monotonic() - start > time_limit and len(collected) >= 200:
                break
        stats = np.asarray(collected)
    if len(stats) < 50:
        return None
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
