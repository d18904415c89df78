"""The fairness table for sensitive columns: each group's test metric with a bootstrap 95% CI, and
the largest gap between groups with its own CI.

The gap's CI comes from the same bootstrap draws (each group resampled on its own, every draw
recomputes every group's metric and the gap between the best and worst of them), so it says how
much of a gap the test split's size alone could produce.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.markdown import md_cell
from dsagent.tools.metrics import resampled_scores, score

MIN_ROWS = 10  # smaller groups are listed but not judged
MAX_GROUPS = 12


def _metric_or_none(metric, y, pred, proba) -> float | None:
    try:
        v = score(metric, y, pred, proba)
    except ValueError:  # e.g. AUC on a group holding one class
        return None
    return None if v is None or not np.isfinite(v) else float(v)


def group_values(values: pd.Series) -> np.ndarray:
    """A group label per row: quartiles for a many-valued number (age), the value otherwise."""
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > 10:
        values = pd.qcut(values, 4, duplicates="drop").astype(str)
    return values.astype(str).fillna("(missing)").to_numpy()


def fairness_table(values: pd.Series, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, metric,
                   seed: int = 0, n_boot: int = 200, time_limit: float = 3.0) -> dict[str, Any]:
    """{"metric", "groups": [{value, n, score, ci}], "gap": {value, ci, between}} for one column.

    The metrics the test-split bootstrap vectorises (row means, label counts, ROC-AUC, PR-AUC,
    one-vs-rest ROC-AUC) draw all `n_boot` resamples at once; others resample one at a time until
    `time_limit` (once 50 gaps are in). One at a time, 5 sensitive columns took 16 s of census_kdd's
    evaluation, and ~1.5 s of a 344-row penguins run's."""
    labels = group_values(values.reset_index(drop=True))
    order = pd.Series(labels).value_counts().index[:MAX_GROUPS]
    idx = {g: np.flatnonzero(labels == g) for g in order}
    judged = [g for g in order if len(idx[g]) >= MIN_ROWS]
    sub = lambda rows: (y[rows], pred[rows], None if proba is None else proba[rows])  # noqa: E731
    point = {g: _metric_or_none(metric, *sub(idx[g])) for g in order}
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {g: [] for g in judged}
    gaps: list[float] = []
    fast = {g: resampled_scores(metric, y, pred, proba, idx[g], n_boot, rng) for g in judged}
    vectorised = bool(judged) and all(v is not None for v in fast.values())
    if vectorised:
        # Every group's draws at once (the same independent resampling within each group); draw b of
        # each group makes draw b of the gap.
        table = np.vstack([fast[g] for g in judged])
        for g, row in zip(judged, table):
            draws[g] = [float(v) for v in row[np.isfinite(row)]]
        ok = np.isfinite(table)
        several = ok.sum(axis=0) >= 2
        scored = np.where(ok, table, np.nan)[:, several]
        gaps = [float(v) for v in np.nanmax(scored, axis=0) - np.nanmin(scored, axis=0)]
    started = time.perf_counter()
    for _ in range(0 if vectorised else n_boot):
        this = {g: _metric_or_none(metric, *sub(rng.choice(idx[g], len(idx[g])))) for g in judged}
        for g, v in this.items():
            if v is not None:
                draws[g].append(v)
        scored = [v for v in this.values() if v is not None]
        if len(scored) >= 2:
            gaps.append(max(scored) - min(scored))
        if time.perf_counter() - started > time_limit and len(gaps) >= 50:
            break

    def ci(vals: list[float]) -> list[float] | None:
        return [round(float(np.percentile(vals, 2.5)), 5), round(float(np.percentile(vals, 97.5)), 5)] if len(vals) >= 20 else None

    groups = [{"value": str(g), "n": int(len(idx[g])), "score": None if point[g] is None else round(point[g], 5),
               "ci": ci(draws[g]) if g in draws else None, "judged": g in judged} for g in order]
    valued = [r for r in groups if r["judged"] and r["score"] is not None]
    gap = None
    if len(valued) >= 2:
        hi, lo = max(valued, key=lambda r: r["score"]), min(valued, key=lambda r: r["score"])
        gap = {"value": round(hi["score"] - lo["score"], 5), "ci": ci(gaps), "between": [hi["value"], lo["value"]]}
    return {"metric": metric.name, "greater_is_better": metric.greater_is_better, "groups": groups, "gap": gap,
            "n_boot": len(gaps)}


def fairness_md(table: dict[str, Any] | None) -> list[str]:
    """The table as markdown lines (empty when there is none)."""
    if not table:
        return []
    m = table["metric"]
    lines = [f"Fairness: {m} per group on the test split, with bootstrap 95% CIs ({table['n_boot']} resamples):", "",
             f"| group | rows | {m} | 95% CI |", "|---|---|---|---|"]
    for r in table["groups"]:
        ci = f"{r['ci'][0]:.4f} to {r['ci'][1]:.4f}" if r.get("ci") else ("too few rows" if not r["judged"] else "n/a")
        value = "n/a" if r["score"] is None else f"{r['score']:.4f}"
        lines.append(f"| {md_cell(r['value'])} | {r['n']} | {value} | {ci} |")
    gap = table.get("gap")
    if gap:
        ci = f" (95% CI {gap['ci'][0]:.4f} to {gap['ci'][1]:.4f})" if gap.get("ci") else ""
        lines += ["", f"- Largest gap in {m}: {gap['value']:.4f}{ci}, between `{md_cell(gap['between'][0])}` and "
                      f"`{md_cell(gap['between'][1])}`" + ("; a CI reaching near 0 means the test split cannot tell the "
                                                          "groups apart." if gap.get("ci") else ".")]
    return lines + [""]
