"""What a business reader needs from a segmentation or a list of anomalies.

Segments: size, the features that set each apart (standardised difference of the segment's mean
from everyone's, in standard deviations; a category level as its share), a short name from the
top two, a 2-D map (PCA of the model's features) and a profile heatmap. Anomalies: the top rows
with the features that make each unusual (robust z-scores, rare category levels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.unsupervised.prep import standardized_table

TOP = 3
MIN_EFFECT = 0.3  # a difference below 0.3 SD is not what sets a segment apart


def _word(feature: str, diff: float) -> str:
    if "=" in feature:
        col, level = feature.split("=", 1)
        return f"{'mostly' if diff > 0 else 'few'} {col} {level}"
    return f"{'high' if diff > 0 else 'low'} {feature}"


def describe_segments(X: pd.DataFrame, labels: np.ndarray, groups: dict[str, list[str]]) -> list[dict[str, Any]]:
    table = standardized_table(X, groups)
    mean, sd = table.mean(), table.std(ddof=0).replace(0, np.nan)
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for seg in sorted(set(labels.tolist()), key=lambda s: (s < 0, s)):
        rows = table[labels == seg]
        diff = ((rows.mean() - mean) / sd).dropna()
        top = diff.reindex(diff.abs().sort_values(ascending=False).index)[:TOP]
        marked = [(f, float(d)) for f, d in top.items() if abs(d) >= MIN_EFFECT]
        words, used = [], set()
        for f, d in marked:  # one word per column: "mostly region north" already says "few region south"
            if f.split("=", 1)[0] not in used and len(words) < 2:
                words.append(_word(f, d))
                used.add(f.split("=", 1)[0])
        name = "noise (fits no segment)" if seg < 0 else (", ".join(words) or "typical rows")
        if name in names:
            name = f"{name} ({seg})"
        names.add(name)
        out.append({"segment": int(seg), "name": name, "size": int(len(rows)), "share": round(len(rows) / max(len(labels), 1), 4),
                    "distinguishing": [{"feature": f, "std_diff": round(d, 3),
                                        "segment_mean": round(float(rows[f].mean()), 4), "overall_mean": round(float(mean[f]), 4)}
                                       for f, d in marked]})
    return out


def anomaly_reasons(X: pd.DataFrame, scores: np.ndarray, groups: dict[str, list[str]], top: int = 10) -> list[dict[str, Any]]:
    """The `top` highest-scoring rows, each with up to three features that make it unusual."""
    num = X[groups["numeric"]].apply(pd.to_numeric, errors="coerce").astype(float) if groups["numeric"] else pd.DataFrame(index=X.index)
    med = num.median()
    mad = (1.4826 * (num - med).abs().median()).replace(0, np.nan).fillna(num.std(ddof=0)).replace(0, 1.0)
    shares = {c: X[c].astype(str).value_counts(normalize=True) for c in groups["categorical"]}
    out = []
    for pos in np.argsort(-scores, kind="stable")[:top]:
        reasons = []
        if len(num.columns):
            z = ((num.iloc[pos] - med) / mad).dropna()
            for col in z.abs().sort_values(ascending=False).index[:TOP]:
                if abs(z[col]) >= 2:
                    reasons.append({"feature": col, "value": float(num.iloc[pos][col]), "robust_z": round(float(z[col]), 2),
                                    "median": float(med[col])})
        for col, share in shares.items():
            value = str(X.iloc[pos][col])
            if share.get(value, 0.0) < 0.05:
                reasons.append({"feature": col, "value": value, "share_of_rows": round(float(share.get(value, 0.0)), 4)})
        out.append({"row": int(X.index[pos]), "anomaly_score": round(float(scores[pos]), 4), "reasons": reasons[:TOP + 1]})
    return out


def segment_plots(Z: np.ndarray, labels: np.ndarray, segments: list[dict[str, Any]], folder: Path) -> dict[str, str]:
    """`segment_map.png` (PCA 2-D) and `segment_profiles.png` (std differences heatmap)."""
    from sklearn.decomposition import PCA

    from dsagent.tools.plots import _plt, _save

    plt = _plt()
    files: dict[str, str] = {}
    pca = PCA(n_components=min(2, Z.shape[1]), random_state=0).fit(Z)
    P = pca.transform(Z)
    if P.shape[1] == 1:
        P = np.column_stack([P[:, 0], np.zeros(len(P))])
    rng = np.random.default_rng(0)
    show = rng.choice(len(P), 5000, replace=False) if len(P) > 5000 else np.arange(len(P))
    fig, ax = plt.subplots(figsize=(7, 5.5))
    for s in segments:
        mask = labels[show] == s["segment"]
        ax.scatter(P[show][mask, 0], P[show][mask, 1], s=10, alpha=0.6, label=f"{s['segment']}: {s['name'][:40]} ({s['share']:.0%})")
    var = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({var[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({var[1]:.0%} of variance)" if len(var) > 1 else "PC2")
    ax.set_title("Segments on the first two principal components")
    ax.legend(fontsize=8, loc="best")
    files["segment_map"] = _save(fig, folder / "segment_map.png")
    features = sorted({d["feature"] for s in segments for d in s["distinguishing"]})[:20]
    if features:
        grid = np.array([[next((d["std_diff"] for d in s["distinguishing"] if d["feature"] == f), 0.0) for f in features]
                         for s in segments])
        fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(features) + 3), 0.5 * len(segments) + 2.5))
        lim = max(1.0, float(np.abs(grid).max()))
        im = ax.imshow(grid, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        ax.set_xticks(range(len(features)), features, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(segments)), [f"{s['segment']}: {s['name'][:30]}" for s in segments], fontsize=8)
        ax.set_title("What sets each segment apart (standardised difference from all rows)")
        ax.grid(False)
        fig.colorbar(im, ax=ax, label="standard deviations")
        files["segment_profiles"] = _save(fig, folder / "segment_profiles.png")
    return files


def score_plot(scores: np.ndarray, threshold: float, folder: Path) -> str:
    from dsagent.tools.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(scores, bins=50, color="#4477aa")
    ax.axvline(threshold, color="#cc3311", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set_xlabel("anomaly score (higher = more unusual)")
    ax.set_ylabel("rows")
    ax.set_title("Distribution of anomaly scores")
    ax.legend()
    return _save(fig, folder / "anomaly_scores.png")
