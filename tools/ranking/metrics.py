"""Ranking metrics, computed per group and averaged over groups (each group counts once).

Conventions (the report states them):
- rows are ordered by score, highest first; ties keep the input order (a stable sort), so a
  constant score ranks in file order rather than by chance;
- NDCG@k uses the exponential gain 2^grade - 1 and log2(position + 1) discounts, as XGBoost's
  rank:ndcg does;
- MAP@k, MRR and precision@k need relevant / not relevant: a row is relevant when its grade is at
  least `threshold`. A group with no relevant row has nothing to find: it is left out of every
  metric, NDCG included, so that all four average the same groups (`groups_without_relevant`). AP@k divides by min(relevant rows, k); precision@k divides by min(k, group
  size), so a group of 3 is not penalised for having fewer than k rows; MRR uses the whole group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

METRIC_NAMES = ("ndcg", "map", "mrr", "precision")


def _order(score: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(score, dtype=float), kind="stable")


def ndcg_at_k(grades, score, k: int) -> float:
    g = np.asarray(grades, dtype=float)
    gains = 2.0 ** g - 1.0
    disc = 1.0 / np.log2(np.arange(2, min(k, len(g)) + 2))
    ideal = float(np.sort(gains)[::-1][:k] @ disc)
    return float(gains[_order(score)][:k] @ disc) / ideal if ideal > 0 else float("nan")


def ap_at_k(relevant, score, k: int) -> float:
    rel = np.asarray(relevant, dtype=bool)[_order(score)]
    if not rel.any():
        return float("nan")
    top = rel[:k]
    precisions = np.cumsum(top) / np.arange(1, len(top) + 1)
    return float(precisions[top].sum() / min(int(rel.sum()), k))


def reciprocal_rank(relevant, score) -> float:
    rel = np.asarray(relevant, dtype=bool)[_order(score)]
    return float(1.0 / (np.argmax(rel) + 1)) if rel.any() else float("nan")


def precision_at_k(relevant, score, k: int) -> float:
    rel = np.asarray(relevant, dtype=bool)[_order(score)]
    if not rel.any():
        return float("nan")
    return float(rel[:k].sum() / min(k, len(rel)))


def per_group(grades, score, groups, k: int, threshold: float) -> pd.DataFrame:
    """One row per group: its size and its four metrics (NaN for a group with no relevant row)."""
    frame = pd.DataFrame({"grade": np.asarray(grades, dtype=float), "score": np.asarray(score, dtype=float),
                          "group": np.asarray(groups)})
    rows = []
    for name, g in frame.groupby("group", sort=False):
        rel = g["grade"].to_numpy() >= threshold
        s, gr = g["score"].to_numpy(), g["grade"].to_numpy()
        rows.append({"group": name, "size": len(g), "relevant": int(rel.sum()), "ndcg": ndcg_at_k(gr, s, k),
                     "map": ap_at_k(rel, s, k), "mrr": reciprocal_rank(rel, s), "precision": precision_at_k(rel, s, k)})
    return pd.DataFrame(rows)


def scored_groups(table: pd.DataFrame) -> pd.DataFrame:
    """The groups the averages cover: those with a relevant row."""
    return table[table["relevant"] > 0] if len(table) else table


def summarize(table: pd.DataFrame, n_boot: int = 0, seed: int = 0) -> dict[str, Any]:
    """Mean of each metric over the groups that have a relevant row; with n_boot, a 95% CI from a
    bootstrap over those groups (groups, not rows, are the independent units)."""
    scored = scored_groups(table)
    out: dict[str, Any] = {"groups": int(len(scored)), "groups_without_relevant": int(len(table) - len(scored))}
    for m in METRIC_NAMES:
        out[m] = float(scored[m].mean()) if len(scored) else float("nan")
    if n_boot and len(scored) > 1:
        rng = np.random.default_rng(seed)
        values = scored[list(METRIC_NAMES)].to_numpy()
        idx = rng.integers(0, len(values), size=(n_boot, len(values)))
        means = values[idx].mean(axis=1)
        for j, m in enumerate(METRIC_NAMES):
            lo, hi = np.percentile(means[:, j], [2.5, 97.5])
            out[f"{m}_ci"] = [float(lo), float(hi)]
    return out


def score_groups(grades, score, groups, k: int, threshold: float, n_boot: int = 0, seed: int = 0) -> dict[str, Any]:
    return summarize(per_group(grades, score, groups, k, threshold), n_boot, seed)


def by_group_size(table: pd.DataFrame) -> list[dict[str, Any]]:
    """NDCG by group-size band (small groups are easy to rank well by chance)."""
    scored = scored_groups(table)
    if scored.empty:
        return []
    bands = pd.cut(scored["size"], [0, 2, 5, 10, 20, 50, np.inf], labels=["1-2", "3-5", "6-10", "11-20", "21-50", "51+"])
    out = []
    for band, g in scored.groupby(bands, observed=True):
        out.append({"size": str(band), "groups": int(len(g)), "ndcg": float(g["ndcg"].mean()), "mrr": float(g["mrr"].mean())})
    return out
