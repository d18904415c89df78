"""The report's "Performance over time" section for a tabular task split by time: the test split's
rows cut into consecutive time buckets, the main metric in each, and a plot of it.

A model tested on the latest rows of a time-ordered split meets the future the way it will in use;
one score over the whole test window can hide that it is good on the first weeks and degrades after
(drift), or is poor in one season. Buckets hold equal numbers of rows (in time order), so each score
rests on enough rows; a bucket where the metric is undefined (one class only, for AUC) shows n/a.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.timestamps import parse_times

MAX_BUCKETS = 6
MIN_ROWS = 20  # rows per bucket below which a score says little


def time_buckets(times: pd.Series, max_buckets: int = MAX_BUCKETS, min_rows: int = MIN_ROWS) -> np.ndarray | None:
    """Bucket number (0 = earliest) of each row, by equal-count consecutive cuts in time order (rows at
    the same time stay together); None when the rows cannot make two buckets of `min_rows`."""
    ts = parse_times(times)
    k = min(max_buckets, int(ts.notna().sum()) // min_rows)
    if k < 2:
        return None
    ranks = ts.rank(method="min")  # equal times share a rank, hence a bucket
    out = np.floor((ranks.to_numpy() - 1) * k / ts.notna().sum())
    return np.where(np.isnan(out), -1, out).astype(int)  # -1: a row with no readable time, left out


def performance_over_time(frame: pd.DataFrame, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None,
                          task: dict[str, Any], metric_name: str) -> list[dict[str, Any]]:
    """One row per time bucket of the test split: its first and last time, rows, the metric (None when
    undefined there), and for regression the mean residual (a drift shows as a trend in it)."""
    from dsagent.tools.metrics import score, task_metrics

    column = (task.get("split") or {}).get("time_column")
    if (task.get("split") or {}).get("kind") != "time" or not column or column not in frame.columns:
        return []
    buckets = time_buckets(frame[column])
    if buckets is None:
        return []
    ts = parse_times(frame[column])
    metric = task_metrics(task["task"])[metric_name]
    shown = "%Y-%m-%d" if bool((ts.dropna() == ts.dropna().dt.normalize()).all()) else "%Y-%m-%d %H:%M"
    rows = []
    for b in range(buckets.max() + 1):
        m = buckets == b
        row: dict[str, Any] = {"from": ts[m].min().strftime(shown), "to": ts[m].max().strftime(shown), "n": int(m.sum())}
        try:
            with warnings.catch_warnings():  # one class in a period: scikit-learn warns and answers nan
                warnings.simplefilter("ignore")
                value = float(score(metric, y[m], pred[m], None if proba is None else proba[m]))
        except (ValueError, IndexError):
            value = float("nan")
        row[metric_name] = value if np.isfinite(value) else None
        if task["task"] == "regression":
            row["mean_residual"] = float(np.mean(y[m] - pred[m]))
        rows.append(row)
    return rows


def section(rows: list[dict[str, Any]], metric: str, overall: float, path: Path, rel: str) -> list[str]:
    """The report lines (and the plot at `path`) for performance_over_time's rows; [] when there are none."""
    if not rows:
        return []
    from dsagent.tools.task_sections import fmt

    _plot(rows, metric, overall, path)
    residual = "mean_residual" in rows[0]
    lines = ["## Performance over time", "",
             f"The test split is the latest rows; here it is cut into {len(rows)} consecutive periods of about "
             f"{rows[0]['n']} rows, scored on their own (the whole test split: {fmt(overall)}).", "",
             "| from | to | rows | " + metric + " |" + (" mean residual |" if residual else ""),
             "|---|---|---|---|" + ("---|" if residual else "")]
    lines += [f"| {r['from']} | {r['to']} | {r['n']} | {fmt(r[metric])} |"
              + (f" {fmt(r['mean_residual'])} |" if residual else "") for r in rows]
    scored = [r[metric] for r in rows if r[metric] is not None]
    if len(scored) >= 2:
        lines += ["", f"From the first scored period to the last, {metric} went from {fmt(scored[0])} to {fmt(scored[-1])}; "
                      "a steady slide is a sign of drift (monitoring.md says when to retrain)."]
    return lines + ["", f"![{metric} over time]({rel})", ""]


def _plot(rows: list[dict[str, Any]], metric: str, overall: float, path: Path) -> str:
    from dsagent.tools.plots import _plt, _save

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    labels = [f"{r['from'][:10]}\n(n={r['n']})" for r in rows]
    values = [np.nan if r[metric] is None else r[metric] for r in rows]
    ax.plot(range(len(rows)), values, marker="o", color="#4C72B0")
    ax.axhline(overall, ls="--", color="grey", label=f"whole test split ({overall:.3f})")
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set(title=f"{metric} per period of the test split", xlabel="period starting", ylabel=metric)
    ax.legend(fontsize=8)
    return _save(fig, path)
