"""train_models: compare a baseline and candidate model families by cross-validation on the
training part only; keep out-of-fold predictions for ensembling and threshold choice."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import pandas as pd

from tools import paths
from tools.data import load_dataset
from tools.features import build_pipeline
from tools.metrics import all_scores, get_metric, score
from tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, tool
from tools.task import training_data

DEFAULT_CANDIDATES = ["baseline", "linear", "xgboost", "hist_gb", "random_forest", "extra_trees"]


def cv_splits(task: dict[str, Any], X: pd.DataFrame, y: np.ndarray, ctx: ToolContext) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold, TimeSeriesSplit, train_test_split

    plan, split = task["cv"], task["split"]
    idx = np.arange(len(X))
    classification = task["task"] != "regression"
    if plan["kind"] == "holdout":
        strat = y if classification and np.bincount(y).min() >= 2 else None
        tr, va = train_test_split(idx, test_size=plan.get("fraction", 0.2), random_state=ctx.seed, stratify=strat)
        return [(np.sort(tr), np.sort(va))]
    k = plan["folds"]
    if split["kind"] == "time":
        return list(TimeSeriesSplit(n_splits=k).split(idx))
    if split["kind"] == "group":
        df, _ = load_dataset(ctx)
        groups = df.iloc[task["train_rows"]][split["group_column"]].astype(str).to_numpy() if "train_rows" in task else None
        return list(GroupKFold(n_splits=k).split(idx, groups=groups))
    if classification and np.bincount(y).min() >= k:
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=ctx.seed).split(idx, y))
    return list(KFold(n_splits=k, shuffle=True, random_state=ctx.seed).split(idx))


def predict_any(model, X, task: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """(predicted labels or values, class probabilities or None)."""
    if task["task"] == "regression":
        return np.asarray(model.predict(X), dtype=float), None
    proba = np.asarray(model.predict_proba(X), dtype=float)
    n_classes = len(task["classes"])
    if proba.shape[1] != n_classes:  # a fold that missed a class: pad with zeros
        full = np.zeros((len(proba), n_classes))
        full[:, model.classes_] = proba
        proba = full
    return proba.argmax(axis=1), proba


class OutOfTime(Exception):
    """A candidate's folds would overrun the time budget."""


def cross_validate(spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, task: dict[str, Any], ctx: ToolContext,
                   splits: list[tuple[np.ndarray, np.ndarray]], on_fold=None, deadline: float | None = None) -> dict[str, Any]:
    """Fit the spec on each fold's training rows; score on its validation rows (OOF).

    With a deadline, stop as soon as the folds done so far say the rest would not fit."""
    metric = get_metric(task["metric"], task["task"])
    n_classes = len(task["classes"]) if task["classes"] else 0
    oof = np.full((len(X), n_classes), np.nan) if n_classes else np.full(len(X), np.nan)
    fold_scores, fit_s, predict_s = [], 0.0, 0.0
    for i, (tr, va) in enumerate(splits):
        model = build_pipeline(spec, task["features"], X, task["task"], ctx.seed, n_classes)
        t0 = time.perf_counter()
        model.fit(X.iloc[tr], y[tr])
        t1 = time.perf_counter()
        pred, proba = predict_any(model, X.iloc[va], task)
        predict_s += time.perf_counter() - t1
        fit_s += t1 - t0
        oof[va] = proba if proba is not None else pred
        fold_scores.append(score(metric, y[va], pred, proba))
        if on_fold is not None:
            on_fold(i, fold_scores[-1])
        per_fold = (fit_s + predict_s) / (i + 1)
        if deadline is not None and i + 1 < len(splits) and time.time() + per_fold * (len(splits) - i - 1) > deadline:
            raise OutOfTime(f"{spec['family']} needs ~{per_fold * len(splits):.0f}s for {len(splits)} folds")
    covered = ~np.isnan(oof if oof.ndim == 1 else oof[:, 0])
    return {"oof": oof, "covered": covered, "fold_scores": fold_scores, "fit_s": fit_s, "predict_s": predict_s,
            "n_predicted": int(covered.sum())}


def oof_scores(task: dict[str, Any], y: np.ndarray, oof: np.ndarray, covered: np.ndarray) -> dict[str, float]:
    if task["task"] == "regression":
        return all_scores("regression", y[covered], oof[covered], None)
    proba = oof[covered]
    return all_scores(task["task"], y[covered], proba.argmax(axis=1), proba)


def leaderboard_row(name: str, spec: dict[str, Any], task: dict[str, Any], y: np.ndarray, cv: dict[str, Any]) -> dict[str, Any]:
    scores = np.asarray(cv["fold_scores"])
    return {
        "name": name,
        "family": spec["family"],
        "params": spec.get("params", {}),
        "metric": task["metric"],
        "cv_mean": float(scores.mean()),
        "cv_std": float(scores.std(ddof=1)) if len(scores) > 1 else 0.0,
        "folds": [round(float(s), 6) for s in scores],
        "oof_metrics": {k: round(v, 6) for k, v in oof_scores(task, y, cv["oof"], cv["covered"]).items()},
        "fit_s": round(cv["fit_s"], 3),
        "predict_ms_per_1k": round(1000 * cv["predict_s"] / max(cv["n_predicted"], 1) * 1000, 3),
    }


def load_leaderboard(ctx: ToolContext) -> list[dict[str, Any]]:
    path = ctx.artifacts_dir / paths.LEADERBOARD
    return json.loads(path.read_text()) if path.exists() else []


def save_leaderboard(ctx: ToolContext, rows: list[dict[str, Any]], greater_is_better: bool) -> list[dict[str, Any]]:
    by_name = {r["name"]: r for r in rows}
    ranked = sorted(by_name.values(), key=lambda r: -r["cv_mean"] if greater_is_better else r["cv_mean"])
    artifact_path(ctx, paths.LEADERBOARD).write_text(json.dumps(ranked, indent=1))
    return ranked


def save_oof(ctx: ToolContext, name: str, oof: np.ndarray) -> None:
    path = artifact_path(ctx, paths.OOF)
    stored = dict(np.load(path)) if path.exists() else {}
    stored[name] = oof
    tmp = path.with_name("oof.tmp.npz")
    np.savez_compressed(tmp, **stored)
    tmp.replace(path)


def compact_board(rows: list[dict[str, Any]], top: int = 8) -> list[dict[str, Any]]:
    return [{"name": r["name"], "cv_mean": round(r["cv_mean"], 5), "cv_std": round(r["cv_std"], 5), "fit_s": r["fit_s"]}
            for r in rows[:top]]


@tool
def train_models(ctx: ToolContext, models: list[str] | None = None, time_budget_s: float | None = None) -> ToolOutput:
    """Cross-validate a baseline and candidate model families on the training split.

    Each candidate is a full scikit-learn Pipeline (imputation, encoding, model) so folds never
    leak. Families: baseline (prior/mean), linear (logistic/ridge), hist_gb, xgboost,
    random_forest, extra_trees. Returns a leaderboard with CV mean and spread of the task metric,
    fit time and prediction time. Candidates that would not fit in the time budget are skipped.

    Args:
        models: families to try; default all of them, baseline first.
        time_budget_s: seconds to spend; default what is left of the session budget.
    """
    X, y, task = training_data(ctx)
    families = models or DEFAULT_CANDIDATES
    unknown = [m for m in families if m not in DEFAULT_CANDIDATES]
    if unknown:
        raise ToolError(f"unknown model families {unknown}; choose from {DEFAULT_CANDIDATES}")
    if "baseline" not in families:
        families = ["baseline", *families]
    budget = time_budget_s if time_budget_s is not None else ctx.seconds_left(120)
    deadline = time.time() + budget
    splits = cv_splits(task, X, y, ctx)
    rows, skipped = [], []
    for i, family in enumerate(families):
        left = deadline - time.time()
        if family != "baseline" and left <= 0:
            skipped.append(family)
            continue
        ctx.report(f"cross-validating {family} ({len(splits)} folds)", i / len(families))
        spec = {"family": family, "params": {}}
        try:
            # The baseline always completes: everything is judged against it.
            cv = cross_validate(spec, X, y, task, ctx, splits, deadline=None if family == "baseline" else deadline)
        except OutOfTime as exc:
            skipped.append(f"{family} (out of time: {exc})")
            continue
        except Exception as exc:  # one failing family must not sink the comparison
            skipped.append(f"{family} (failed: {type(exc).__name__}: {str(exc)[:120]})")
            continue
        save_oof(ctx, family, cv["oof"])
        rows.append(leaderboard_row(family, spec, task, y, cv))
    ranked = save_leaderboard(ctx, load_leaderboard(ctx) + rows, task["greater_is_better"])
    baseline = next((r for r in ranked if r["family"] == "baseline"), None)
    summary = {
        "metric": task["metric"],
        "greater_is_better": task["greater_is_better"],
        "cv": f"{len(splits)} fold(s) on {len(X)} training rows",
        "leaderboard": compact_board(ranked),
        "baseline_cv": round(baseline["cv_mean"], 5) if baseline else None,
        "best": ranked[0]["name"] if ranked else None,
        "skipped": skipped,
    }
    return ToolOutput(summary=summary, record={"leaderboard": ranked, "skipped": skipped},
                      files={"leaderboard": paths.LEADERBOARD})
