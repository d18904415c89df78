"""Aggregate figures over a set of datasets (issue 18): mean rank, mean normalised score, and
wins/ties/losses against each peer judged by the paired bootstrap CI of the score difference.

Per-dataset wins alone hide how large the wins and losses are; a mean rank and a normalised
score weigh every dataset alike whatever its metric's scale. Used by bench.py's report; pure
functions over the results dict that bench.py stores (no ML library here).
"""

from __future__ import annotations

import statistics
from typing import Any


def _scores(entry: dict[str, Any], systems: list[str]) -> dict[str, float] | None:
    """Each system's test score on one dataset, or None unless every one of `systems` has one."""
    out = {s: entry["systems"].get(s, {}).get("score") for s in systems}
    if any(v is None or entry["systems"][s].get("status") != "ok" for s, v in out.items()):
        return None
    return out


def at_least_as_good(mine: float, theirs: float, greater: bool) -> bool:
    """Whether score `mine` is as good as `theirs` or better (point scores, no interval)."""
    return mine >= theirs if greater else mine <= theirs


def _ranks(values: dict[str, float], greater: bool) -> dict[str, float]:
    """Rank 1 = best; tied systems share the mean of their ranks."""
    ordered = sorted(values, key=lambda s: -values[s] if greater else values[s])
    ranks: dict[str, float] = {}
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and values[ordered[j + 1]] == values[ordered[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[ordered[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _normalised(values: dict[str, float], greater: bool) -> dict[str, float]:
    """1 = the best system on this dataset, 0 = the worst (all 1 when they tie)."""
    best, worst = (max(values.values()), min(values.values())) if greater else (min(values.values()), max(values.values()))
    if best == worst:
        return {s: 1.0 for s in values}
    return {s: (v - worst) / (best - worst) for s, v in values.items()}


def rank_table(datasets: dict[str, dict], names: list[str], systems: list[str]) -> dict[str, Any]:
    """Mean rank and mean normalised score of each system over the datasets of `names` on which
    every one of `systems` has a score (the others are listed as left out)."""
    used, left_out = [], []
    rank_sum = {s: 0.0 for s in systems}
    norm_sum = {s: 0.0 for s in systems}
    for name in names:
        entry = datasets.get(name)
        values = _scores(entry, systems) if entry else None
        if values is None:
            left_out.append(name)
            continue
        used.append(name)
        greater = entry["greater_is_better"]
        for s, r in _ranks(values, greater).items():
            rank_sum[s] += r
        for s, v in _normalised(values, greater).items():
            norm_sum[s] += v
    n = len(used)
    return {"datasets": used, "left_out": left_out,
            "mean_rank": {s: round(rank_sum[s] / n, 2) if n else None for s in systems},
            "mean_normalised": {s: round(norm_sum[s] / n, 3) if n else None for s in systems}}


def wins_ties_losses(datasets: dict[str, dict], names: list[str], peer: str) -> dict[str, Any]:
    """dsagent against one peer: a win (loss) when the paired bootstrap 95% CI of dsagent's score
    minus the peer's lies wholly on the better (worse) side of zero, a tie otherwise. Datasets
    without the peer's predictions on disk have no CI and are counted apart, by point score."""
    out: dict[str, Any] = {"wins": [], "ties": [], "losses": [], "point_only": [], "at_least_as_good": 0, "played": 0}
    for name in names:
        entry = datasets.get(name)
        if not entry:
            continue
        ds, other = entry["systems"].get("dsagent", {}), entry["systems"].get(peer, {})
        if ds.get("score") is None or other.get("score") is None:
            continue
        greater = entry["greater_is_better"]
        out["played"] += 1
        mine, theirs = ds["score"], other["score"]
        out["at_least_as_good"] += int(at_least_as_good(mine, theirs, greater))
        vs = ds.get("vs", {}).get(peer)
        if not vs:
            out["point_only"].append(name)
            continue
        lo, hi = vs["diff_ci95"]
        better, worse = (lo > 0, hi < 0) if greater else (hi < 0, lo > 0)
        out["wins" if better else "losses" if worse else "ties"].append(name)
    return out


def wall_figures(datasets: dict[str, dict], names: list[str], budget_s: float, system: str = "dsagent") -> dict[str, Any]:
    """One system's whole-process wall time over the budget on the datasets of `names`: the median,
    the longest, how many runs ended within [0.9, 1.1] x budget and how many past 1.15 x (the
    issue's "use the budget" and "within budget + 15%" lines)."""
    ratios = sorted(e["systems"][system]["wall_s"] / budget_s for n in names
                    if (e := datasets.get(n)) and (e["systems"].get(system) or {}).get("wall_s"))
    if not ratios:
        return {"runs": 0}
    return {"runs": len(ratios), "median": round(statistics.median(ratios), 3), "longest": round(ratios[-1], 3),
            "within": sum(0.9 <= r <= 1.1 for r in ratios), "over_1_15": sum(r > 1.15 for r in ratios)}
