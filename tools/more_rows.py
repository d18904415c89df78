"""A second look on more rows, when the search ran on a subsample of large data.

Which model family is best can change with the number of rows: linear models are strong on a few
thousand rows and tree boosting overtakes them as rows grow (the learning-curve result of Perlich,
Provost and Simonoff, 2003). The search judges candidates on a fixed subsample, and the final model
is fitted on every training row, so the subsample can pick the wrong family: census_kdd at 60 s
searched 7,500 of its 179,570 training rows, linear led there (CV ROC-AUC 0.9329 against the
HistGradientBoosting defaults' 0.9297), and the linear model shipped at test 0.942 where both
boosting defaults score 0.95.

This is the next rung of successive halving: the leading candidates of distinct families are each
fitted once on several times the search's rows and scored on training rows that neither fit saw
(never the test split), and that score orders them on the leaderboard. It runs only where the
training rows hold at least twice the search's beside the held-out part (census_kdd, AER's Fertility;
not shuttle or diamonds, whose searches see most of their rows), never under a time or group split.
No library of its own: the candidates' pipelines, the task's metric."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from dsagent.tools.cv import estimated_refit_s, predict_any
from dsagent.tools.features import build_pipeline
from dsagent.tools.metrics import get_metric, score
from dsagent.tools.registry import ToolContext
from dsagent.tools.schemas import LeaderboardRow, TaskSpec
from dsagent.tools.task_data import training_data
from dsagent.tools.task_types import get_task_type

CONTENDERS = 3  # the leading distinct families; the rest trail by more than a larger sample moves them
GROWTH = (8, 4, 2)  # rows as multiples of the search's rows, largest first; below 2x it says little


def second_look_on() -> bool:
    """On by default; DSAGENT_SECOND_LOOK=0 turns it off (the A/B arm `no_look` of
    benchmarks/automl/budget_ab.py measures what it buys)."""
    return os.environ.get("DSAGENT_SECOND_LOOK") != "0"


def contenders(ranked: list[LeaderboardRow], top: int = CONTENDERS) -> list[LeaderboardRow]:
    """The best row of each of the leading families (the baseline is never one)."""
    chosen: dict[str, LeaderboardRow] = {}
    for row in ranked:
        if row.family not in ("baseline", "ensemble", "stack") and row.family not in chosen:
            chosen[row.family] = row
        if len(chosen) == top:
            break
    return list(chosen.values())


def plan_rows(rows: list[LeaderboardRow], n_search: int, n_pool: int, seconds: float) -> int | None:
    """The most fit rows (a GROWTH multiple of the search's rows, at most the pool's) whose fits of
    every contender the seconds cover, by the search's own timings; None when not even 2x fits."""
    for times in GROWTH:
        m = min(n_pool, times * n_search)
        if m < 2 * n_search:
            continue
        if sum(estimated_refit_s(r.to_json(), m) for r in rows) <= seconds:
            return m
    return None


def second_look(ctx: ToolContext, ranked: list[LeaderboardRow], n_search: int, seconds: float) -> dict[str, Any]:
    """Fit the contenders on more training rows and score them on held-out training rows.

    Returns what was done, for the leaderboard's summary: {"fit_rows", "val_rows", "scores":
    {name: score}, "order": [names best first]}, or {"skipped": why}."""
    X_all, y_all, task = training_data(ctx)
    if task.split.kind in ("time", "group"):
        # A random holdout would let later rows (or a group's other rows) predict earlier ones.
        return {"skipped": f"a {task.split.kind} split: the subsample's CV decides"}
    rows = contenders(ranked)
    if len(rows) < 2:
        return {"skipped": "fewer than two model families finished"}
    n_all = len(y_all)
    n_val = min(max(n_search, 5_000), n_all // 4)
    if n_all - n_val < 2 * n_search:
        return {"skipped": f"the search saw {n_search} of {n_all} training rows: too many for a fit on twice "
                           "as many beside a held-out part"}
    m = plan_rows(rows, n_search, n_all - n_val, seconds)
    if m is None:
        return {"skipped": f"fitting {len(rows)} candidates on twice the search's rows would not fit in {seconds:.0f}s"}
    val, fit = _holdout(y_all, task, n_val, m, ctx.seed)
    metric = get_metric(task.metric, task.task)
    n_classes = len(task.classes) if task.classes else 0
    deadline = time.time() + seconds * 1.25  # the estimates are rough; a fit never starts past this
    scores: dict[str, float] = {}
    failed: list[str] = []
    for i, row in enumerate(sorted(rows, key=lambda r: estimated_refit_s(r.to_json(), m))):
        if time.time() > deadline:
            break
        ctx.report(f"fitting {row.name} on {m} training rows to check the subsample's choice", i / len(rows))
        spec = {"family": row.family, "params": row.params}
        try:
            pipeline = build_pipeline(spec, task.features, X_all.iloc[fit], task.task, ctx.seed, n_classes,
                                      task.get("derived")).fit(X_all.iloc[fit], y_all[fit])
            pred, proba = predict_any(pipeline, X_all.iloc[val], task)
            scores[row.name] = float(score(metric, y_all[val], pred, proba))
        except Exception as exc:  # the CV's order stands for a candidate that cannot be checked
            failed.append(f"{row.name} ({type(exc).__name__}: {str(exc)[:120]})")
    out: dict[str, Any] = {"fit_rows": m, "val_rows": n_val, "scores": {n: round(s, 6) for n, s in scores.items()}}
    if failed:
        out["failed"] = failed
    if len(scores) < 2:
        return {"skipped": "fewer than two candidates were fitted in time", **out}
    out["order"] = sorted(scores, key=lambda n: -scores[n] if metric.greater_is_better else scores[n])
    return out


def _holdout(y: np.ndarray, task: TaskSpec, n_val: int, n_fit: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint validation and fit positions among the training rows, stratified by class."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    strat = y if get_task_type(task.task).stratify() and np.bincount(y).min() >= 2 else None
    rest, val = train_test_split(idx, test_size=n_val, random_state=seed, stratify=strat)
    if n_fit < len(rest):
        rest, _ = train_test_split(rest, train_size=n_fit, random_state=seed,
                                   stratify=y[rest] if strat is not None else None)
    return np.sort(val), np.sort(rest)



def subsample_overrated(board: list[LeaderboardRow], greater_is_better: bool) -> set[str]:
    """Families whose row led the second look's winner in the subsample's CV but lost to it on more
    rows. Out-of-fold predictions on the subsample over-rate them, so a blend weighed on those
    predictions leaves them out (it would bring back what the second look ruled against)."""
    looked = [r for r in board if r.more_rows_score is not None]  # leaderboard order: the winner first
    if len(looked) < 2:
        return set()
    winner = looked[0]
    led = (lambda r: r.cv_mean > winner.cv_mean) if greater_is_better else (lambda r: r.cv_mean < winner.cv_mean)
    return {r.family for r in looked[1:] if led(r) and r.family != winner.family}
