"""Evaluation plots as PNG files: labelled axes, titles and legible text."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "font.size": 10, "axes.titlesize": 12, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def _save(fig, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)


def confusion(cm: np.ndarray, labels: list[str], path: Path, title: str) -> str:
    plt = _plt()
    size = min(4 + 0.5 * len(labels), 12)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.grid(False)
    im = ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels=[str(l)[:18] for l in labels], rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels=[str(l)[:18] for l in labels])
    row_totals = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, np.maximum(row_totals, 1))
    small = len(labels) > 8
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            text = str(cm[i, j]) if small else f"{cm[i, j]}\n({share[i, j]:.0%})"
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if small else 10,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class (row % in brackets)" if len(labels) <= 8 else "actual class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="test rows")
    return _save(fig, path)


def roc_pr(y: np.ndarray, score: np.ndarray, path: Path, positive: str) -> str:
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.5))
    fpr, tpr, _ = roc_curve(y, score)
    a.plot(fpr, tpr, label=f"model (AUC {roc_auc_score(y, score):.3f})")
    a.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    a.set_xlabel("false positive rate")
    a.set_ylabel("true positive rate")
    a.set_title("ROC curve (test split)")
    a.legend(loc="lower right")
    prec, rec, _ = precision_recall_curve(y, score)
    b.plot(rec, prec, label=f"model (AP {average_precision_score(y, score):.3f})")
    b.axhline(y.mean(), ls="--", color="grey", label=f"base rate {y.mean():.3f}")
    b.set_xlabel(f"recall (positive class: {positive})")
    b.set_ylabel("precision")
    b.set_title("Precision-recall curve (test split)")
    b.set_ylim(0, 1.02)
    b.legend(loc="lower left")
    return _save(fig, path)


def calibration(y: np.ndarray, score: np.ndarray, path: Path, positive: str | None = None) -> str:
    """Reliability curve with the number of rows per bin, and the histogram of the scores below it."""
    from sklearn.calibration import calibration_curve

    plt = _plt()
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 6.5), height_ratios=[3, 1], sharex=True)
    bins = int(np.clip(len(y) // 25, 3, 10))  # at least ~25 rows per bin, or the curve is noise
    frac, mean = calibration_curve(y, score, n_bins=bins, strategy="quantile")
    ax.plot(mean, frac, "o-", label=f"model ({bins} bins of ~{len(y) // bins} rows)")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.set_ylabel(f"observed share of {positive}" if positive else "observed frequency of the positive class")
    ax.set_title("Calibration (test split)")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper left")
    hist.hist(score, bins=20, range=(0, 1), color="#4C72B0")
    hist.set_xlabel("predicted probability" + (f" of {positive}" if positive else ""))
    hist.set_ylabel("test rows")
    return _save(fig, path)


def multiclass_curves(y: np.ndarray, proba: np.ndarray, classes: list[str], path: Path) -> str:
    """One-vs-rest ROC per class, and the reliability of the top-class confidence."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.8))
    shown = list(range(len(classes)))[:10]
    for k in shown:
        yk = (y == k).astype(int)
        if yk.min() == yk.max():
            continue
        fpr, tpr, _ = roc_curve(yk, proba[:, k])
        a.plot(fpr, tpr, label=f"{str(classes[k])[:18]} (AUC {roc_auc_score(yk, proba[:, k]):.3f})")
    a.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    a.set_xlabel("false positive rate")
    a.set_ylabel("true positive rate")
    a.set_title("ROC, one class vs the rest (test split)")
    a.legend(loc="lower right", fontsize=8)
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    bins = int(np.clip(len(y) // 25, 3, 10))
    edges = np.unique(np.quantile(conf, np.linspace(0, 1, bins + 1)))
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, max(len(edges) - 2, 0))
    pts = sorted((float(conf[idx == i].mean()), float(correct[idx == i].mean())) for i in np.unique(idx))
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    b.plot(xs, ys, "o-", label=f"model ({len(xs)} bins)")
    b.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    b.set_xlim(max(0.0, min(xs + [1.0 / len(classes)]) - 0.05), 1.01)
    b.set_ylim(-0.02, 1.02)
    b.set_xlabel("confidence (probability of the predicted class)")
    b.set_ylabel("share of predictions that are right")
    b.set_title("Calibration of the top class (test split)")
    b.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def segments(rows: list[dict], metric: str, path: Path, title: str, overall: float | None = None) -> str:
    """Metric per segment value with the number of rows in each label."""
    plt = _plt()
    rows = [r for r in rows if r.get(metric) is not None and np.isfinite(r[metric])][:12]
    fig, ax = plt.subplots(figsize=(7.5, 1.4 + 0.38 * max(len(rows), 1)))
    names = [f"{str(r['value'])[:28]} (n={r['n']})" for r in rows][::-1]
    values = [r[metric] for r in rows][::-1]
    ax.barh(names, values, color="#4C72B0")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.3f}", va="center", fontsize=9)
    ax.set_xlim(0, max(values + [overall or 0]) * 1.15 if values else 1)
    if overall is not None:
        ax.axvline(overall, ls="--", color="grey")
        title = f"{title}; dashed line: all test rows ({overall:.3f})"
    ax.set_xlabel(f"{metric} on the test rows of each segment")
    ax.set_title(title)
    return _save(fig, path)


def regression(y: np.ndarray, pred: np.ndarray, path: Path, target: str) -> str:
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.5))
    a.scatter(y, pred, s=8, alpha=0.5)
    lo, hi = float(min(y.min(), pred.min())), float(max(y.max(), pred.max()))
    a.plot([lo, hi], [lo, hi], "--", color="grey", label="perfect prediction")
    a.set_xlabel(f"actual {target}")
    a.set_ylabel(f"predicted {target}")
    a.set_title("Predicted vs actual (test split)")
    a.legend(loc="upper left")
    resid = y - pred
    b.scatter(pred, resid, s=8, alpha=0.5)
    b.axhline(0, ls="--", color="grey")
    b.set_xlabel(f"predicted {target}")
    b.set_ylabel("residual (actual - predicted)")
    b.set_title("Residuals (test split)")
    return _save(fig, path)


def importance(names: list[str], values: list[float], path: Path, title: str, xlabel: str,
               errors: list[float] | None = None) -> str:
    plt = _plt()
    n = len(names)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.32 * n))
    order = np.arange(n)[::-1]
    ax.barh([str(names[i])[:40] for i in order], [values[i] for i in order],
            xerr=[errors[i] for i in order] if errors else None, color="#4C72B0")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _save(fig, path)
