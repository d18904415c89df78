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
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("actual class")
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
    b.legend(loc="lower left")
    return _save(fig, path)


def calibration(y: np.ndarray, score: np.ndarray, path: Path) -> str:
    from sklearn.calibration import calibration_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    frac, mean = calibration_curve(y, score, n_bins=10, strategy="quantile")
    ax.plot(mean, frac, "o-", label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed frequency of the positive class")
    ax.set_title("Calibration (test split, quantile bins)")
    ax.legend(loc="upper left")
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
