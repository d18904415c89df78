"""Cross-validation and the leaderboard: the library under train_models, tune_model and
build_ensemble (no @tool here, so no tool module imports another). Folds honest to the task
(stratified, grouped or time-ordered), fitting a candidate per fold with early stopping, the
final fit grown to all training rows, out-of-fold predictions, leaderboard rows and their file,
and the refit-time estimate the autopilot budgets with.
"""


import time
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools import paths
from dsagent.tools.data import load_dataset
from dsagent.tools.families import model_families
from dsagent.tools.features import build_pipeline
from dsagent.tools.metrics import all_scores, get_metric, score
from dsagent.tools.opt_in import converged_exponent_on
from dsagent.tools.registry import ToolContext, artifact_path
from dsagent.tools.schemas import CVResult, Leaderboard, LeaderboardRow, TaskSpec
from dsagent.tools.task_types import get_task_type, prediction_of

XGB_MAX_ROUNDS = 2000


def cv_splits(task: TaskSpec, X: pd.DataFrame, y: np.ndarray, ctx: ToolContext) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import (GroupKFold, GroupShuffleSplit, KFold, StratifiedKFold, TimeSeriesSplit,
                                         train_test_split)

    plan, split = task.cv, task.split
    idx = np.arange(len(X))
    classification = get_task_type(task.task).stratify()  # stratified folds
    fraction = plan.fraction
    groups = None
    if split.kind == "group":
        df, _ = load_dataset(ctx)
        groups = df.loc[X.index, split.group_column].astype(str).to_numpy()  # X keeps the data's row labels
    if plan.kind == "holdout":
        # The search holdout follows the split: the latest rows under a time split (training rows
        # come in time order), whole groups under a group split, stratified at random otherwise.
        if split.kind == "time":
            cut = int(round(len(idx) * (1 - fraction)))
            return [(idx[:cut], idx[cut:])]
        if groups is not None:
            tr, va = next(GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=ctx.seed).split(idx, groups=groups))
            return [(np.sort(tr), np.sort(va))]
        strat = y if classification and np.bincount(y).min() >= 2 else None
        tr, va = train_test_split(idx, test_size=fraction, random_state=ctx.seed, stratify=strat)
        return [(np.sort(tr), np.sort(va))]
    k = plan.folds
    if split.kind == "time":
        return list(TimeSeriesSplit(n_splits=k).split(idx))  # rows in time order: each fold validates on later rows
    if groups is not None:
        return list(GroupKFold(n_splits=k).split(idx, groups=groups))
    if classification and np.bincount(y).min() >= k:
        return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=ctx.seed).split(idx, y))
    return list(KFold(n_splits=k, shuffle=True, random_state=ctx.seed).split(idx))


def predict_any(model, X, task: TaskSpec) -> tuple[np.ndarray, np.ndarray | None]:
    """(predicted labels or values, class probabilities or None)."""
    if prediction_of(task["task"]) == "regression":
        return np.asarray(model.predict(X), dtype=float), None
    proba = np.asarray(model.predict_proba(X), dtype=float)
    n_classes = len(task["classes"])
    if proba.shape[1] != n_classes:  # a fold that missed a class: pad with zeros
        full = np.zeros((len(proba), n_classes))
        full[:, model.classes_] = proba
        proba = full
    return proba.argmax(axis=1), proba


class OutOfTime(Exception):
    """A candidate's folds would overrun the time budget. `needs_s`: the seconds all its folds
    would take, projected from the ones it finished."""

    def __init__(self, message: str, needs_s: float = 0.0):
        super().__init__(message)
        self.needs_s = needs_s


def _early_stopping_rounds(params: dict[str, Any]) -> int:
    return int(min(100, max(30, 2.5 / float(params.get("learning_rate", 0.05)))))


def fit_fold(spec: dict[str, Any], X_tr: pd.DataFrame, y_tr: np.ndarray, X_va: pd.DataFrame, y_va: np.ndarray,
             task: TaskSpec, seed: int, n_classes: int) -> tuple[Any, int | None]:
    """Fit one fold. XGBoost without a fixed n_estimators early-stops on the fold's validation
    rows (the preprocessing is fitted on the training rows only) and reports its best round."""
    params = spec.get("params") or {}
    if spec["family"] != "xgboost" or "n_estimators" in params:
        return build_pipeline(spec, task.features, X_tr, task.task, seed, n_classes, task.get("derived")).fit(X_tr, y_tr), None
    model, booster = _fit_early_stopped(params, task, X_tr, y_tr, X_va, y_va, seed, n_classes)
    model.rounds_trained_ = booster.get_booster().num_boosted_rounds()  # best + patience: what the fold paid for
    return model, int(booster.best_iteration) + 1


def _fit_early_stopped(params: dict[str, Any], task: TaskSpec, X_tr: pd.DataFrame, y_tr: np.ndarray,
                       X_va: pd.DataFrame, y_va: np.ndarray, seed: int, n_classes: int, callbacks: list | None = None):
    """(the fitted Pipeline, its XGBoost model) early-stopped on the validation rows, whose
    preprocessing is fitted on the training rows only."""
    es_params = {**params, "n_estimators": XGB_MAX_ROUNDS, "early_stopping_rounds": _early_stopping_rounds(params)}
    model = build_pipeline({"family": "xgboost", "params": es_params}, task.features, X_tr, task.task, seed, n_classes,
                           task.get("derived"))
    pre, est = model.steps[0][1], model.steps[1][1]
    Xt = pre.fit_transform(X_tr, y_tr)
    Xv = pre.transform(X_va)
    log_target = hasattr(est, "func") and est.func is not None
    if callbacks:
        (est.regressor if log_target else est).set_params(callbacks=callbacks)
    if log_target:  # early-stop on the transformed scale
        est.fit(Xt, y_tr, eval_set=[(Xv, est.func(y_va))], verbose=False)
        return model, est.regressor_
    est.fit(Xt, y_tr, eval_set=[(Xv, y_va)], verbose=False)
    return model, est


def refit_rounds(best_rounds: list[int]) -> int:
    """Rounds for the final fit on all training rows: the folds' mean best round, +15% for the
    extra rows the final fit sees."""
    return int(max(10, round(np.mean(best_rounds) * 1.15)))


# Large data is searched on a subsample, and the rounds its folds early-stop at are too few for
# every row (census_kdd, lr 0.05: best at 108 rounds on 5.5k rows, 447 on 160k). So the final fit
# early-stops again, on training rows it holds out, with a larger step when the rounds it would
# need do not fit its time: lr 0.15 reached AUC 0.9541 in 129 rounds (15 s), 0.05 reached 0.9547
# in 447 (36 s); the 108 rounds found on the subsample gave 0.9522.
GROW_MIN_RATIO = 3.0  # only when the final fit sees at least 3x the rows of a search fold
ROUNDS_GROWTH = 0.4  # best rounds ~ rows ** 0.4 (census_kdd: 29x rows, 4.1x rounds)
MAX_GROWN_LEARNING_RATE = 0.3
ROUND_COST_EXPONENT = 0.8  # one round's cost ~ rows ** 0.8 (census_kdd: 5 ms on 5.5k rows, 94 ms on 180k)
MAX_STEP_GROWTH = 3.0  # the final fit's step is at most 3x the searched one; beyond that, fewer rows


def growth_plan(row: dict[str, Any], task: TaskSpec, n_rows: int, seconds: float | None) -> dict[str, Any] | None:
    """How the final fit of an XGBoost candidate re-learns its rounds on up to `n_rows` rows within
    `seconds`: {"rows", "es_rows", "learning_rate", ...}, or None when its search folds saw a
    third of them or more (or the split is by time or group, where a random early-stopping holdout
    would not be honest). Rows are given up before the step grows past 3x the searched one."""
    params = row.get("params") or {}
    fold_rows, trained = row.get("fold_rows"), row.get("fold_rounds")
    if (row.get("family") != "xgboost" or not seconds or seconds <= 0 or not fold_rows or not trained
            or "n_estimators" not in params or task.split.kind not in ("stratified", "random")
            or n_rows < GROW_MIN_RATIO * fold_rows):
        return None
    rate = float(params.get("learning_rate", 0.05))
    fold_round_s = float(row.get("fold_fit_s") or 0.0) / trained

    def shape(n: int) -> dict[str, Any]:
        es_rows = int(min(20_000, n // 5, max(1_000, n // 10)))
        ratio = (n - es_rows) / fold_rows
        needed = params["n_estimators"] / 1.15 * ratio ** ROUNDS_GROWTH  # n_estimators is 1.15 x the folds' best
        affordable = seconds / max(fold_round_s * ratio ** ROUND_COST_EXPONENT, 1e-6)
        return {"rows": n, "es_rows": es_rows, "pressure": needed / max(affordable, 1.0),
                "rounds_needed_at_search_rate": int(needed), "rounds_affordable": int(affordable)}

    plan = shape(n_rows)
    while plan["pressure"] > MAX_STEP_GROWTH and plan["rows"] * 0.8 >= GROW_MIN_RATIO * fold_rows:
        plan = shape(int(plan["rows"] * 0.8))
    step = min(MAX_GROWN_LEARNING_RATE, rate * min(MAX_STEP_GROWTH, max(1.0, plan.pop("pressure"))))
    return {**plan, "learning_rate": round(max(step, rate), 4), "seconds": round(float(seconds), 1)}


def fit_grown(spec: dict[str, Any], plan: dict[str, Any], task: TaskSpec, X_fit: pd.DataFrame, y_fit: np.ndarray,
              X_es: pd.DataFrame, y_es: np.ndarray, seed: int, n_classes: int) -> tuple[Any, dict[str, Any]]:
    """The final XGBoost fit per `growth_plan`: early-stopped on (X_es, y_es), stopped anyway at
    plan["seconds"], then cut to its best round. Returns (pipeline, params): a plain fit of
    {"family": "xgboost", "params": params} on (X_fit, y_fit) rebuilds it tree for tree."""
    import xgboost as xgb

    class Deadline(xgb.callback.TrainingCallback):
        def __init__(self, at: float):
            super().__init__()
            self.at = at

        def after_iteration(self, model, epoch, evals_log) -> bool:
            return time.monotonic() > self.at

    params = {k: v for k, v in (spec.get("params") or {}).items() if k != "n_estimators"}
    params["learning_rate"] = plan["learning_rate"]
    deadline = Deadline(time.monotonic() + plan["seconds"])
    model, booster = _fit_early_stopped(params, task, X_fit, y_fit, X_es, y_es, seed, n_classes, callbacks=[deadline])
    best = int(booster.best_iteration) + 1
    booster._Booster = booster.get_booster()[:best]
    booster.set_params(n_estimators=best, early_stopping_rounds=None, callbacks=None)
    est = model.steps[-1][1]
    if est is not booster:  # the log-target wrapper keeps an unfitted template of the regressor
        est.regressor.set_params(n_estimators=best, early_stopping_rounds=None, callbacks=None)
    return model, {**params, "n_estimators": best}


def cross_validate(spec: dict[str, Any], X: pd.DataFrame, y: np.ndarray, task: TaskSpec, ctx: ToolContext,
                   splits: list[tuple[np.ndarray, np.ndarray]], on_fold=None, deadline: float | None = None,
                   keep_partial: bool = False) -> CVResult:
    """Fit the spec on each fold's training rows; score on its validation rows (OOF).

    With a deadline, stop as soon as the folds done so far say the rest would not fit: raise
    OutOfTime, or with `keep_partial` return what the finished folds measured (the OOF covers
    their validation rows only). `refit_params` are the params to refit with (XGBoost's
    early-stopped round count made fixed)."""
    metric = get_metric(task.metric, task.task)
    n_classes = len(task.classes) if task.classes else 0
    oof = np.full((len(X), n_classes), np.nan) if n_classes else np.full(len(X), np.nan)
    fold_scores, fit_s, predict_s, rounds, trained, fold_rows, val_rows = [], 0.0, 0.0, [], [], [], []
    converged: list[bool | None] = []
    for i, (tr, va) in enumerate(splits):
        t0 = time.perf_counter()
        model, best = fit_fold(spec, X.iloc[tr], y[tr], X.iloc[va], y[va], task, ctx.seed, n_classes)
        t1 = time.perf_counter()
        pred, proba = predict_any(model, X.iloc[va], task)
        predict_s += time.perf_counter() - t1
        fit_s += t1 - t0
        fold_rows.append(len(tr))
        val_rows.append(len(va))
        if best is not None:
            rounds.append(best)
            trained.append(model.rounds_trained_)
        converged.append(_converged(model))
        oof[va] = proba if proba is not None else pred
        fold_scores.append(score(metric, y[va], pred, proba))
        if on_fold is not None:
            on_fold(i, fold_scores[-1])
        per_fold = (fit_s + predict_s) / (i + 1)
        if deadline is not None and i + 1 < len(splits) and time.time() + per_fold * (len(splits) - i - 1) > deadline:
            if keep_partial:
                break
            raise OutOfTime(f"{spec['family']} needs ~{per_fold * len(splits):.0f}s for {len(splits)} folds",
                            per_fold * len(splits))
    covered = ~np.isnan(oof if oof.ndim == 1 else oof[:, 0])
    refit_params = dict(spec.get("params") or {})
    if rounds:
        refit_params["n_estimators"] = refit_rounds(rounds)
    return CVResult(oof=oof, covered=covered, fold_scores=fold_scores, fit_s=fit_s, predict_s=predict_s,
                    n_predicted=int(covered.sum()), refit_params=refit_params, fold_fit_s=fit_s / len(fold_scores),
                    fold_rows=float(np.mean(fold_rows)), fold_rounds=float(np.mean(trained)) if trained else None,
                    fold_val_rows=float(np.mean(val_rows)),
                    fold_converged=None if None in converged or not converged else all(converged))


def _converged(model) -> bool | None:
    """Whether the fitted estimator stopped before its iteration cap (scikit-learn's n_iter_ below
    max_iter: the MLP, HistGradientBoosting's early stopping), None when it has no such cap."""
    est = model.steps[-1][1] if hasattr(model, "steps") else model
    n_iter, cap = getattr(est, "n_iter_", None), getattr(est, "max_iter", None)
    if not isinstance(n_iter, (int, np.integer)) or not isinstance(cap, (int, np.integer)):
        return None
    return bool(n_iter < cap)


def oof_scores(task: TaskSpec, y: np.ndarray, oof: np.ndarray, covered: np.ndarray) -> dict[str, float]:
    if prediction_of(task["task"]) == "regression":
        return all_scores(task.task, y[covered], oof[covered], None)
    proba = oof[covered]
    return all_scores(task.task, y[covered], proba.argmax(axis=1), proba)


def leaderboard_row(name: str, spec: dict[str, Any], task: TaskSpec, y: np.ndarray, cv: CVResult,
                    **measured: Any) -> LeaderboardRow:
    """The one place a leaderboard row is built (candidates, tuned models and the blend).
    `measured` overrides what the blend knows better than its CV timings (summed member costs)."""
    scores = np.asarray(cv.fold_scores)
    fields: dict[str, Any] = {
        "name": name,
        "family": spec["family"],
        "params": cv.refit_params,
        "metric": task.metric,
        "cv_mean": float(scores.mean()),
        "cv_std": float(scores.std(ddof=1)) if len(scores) > 1 else 0.0,
        "folds": [round(float(s), 6) for s in scores],
        "oof_metrics": {k: round(v, 6) for k, v in oof_scores(task, y, cv.oof, cv.covered).items()},
        "fit_s": round(cv.fit_s, 3),
        "fold_fit_s": round(cv.fold_fit_s if cv.fold_fit_s is not None else cv.fit_s, 3),
        "fold_rows": cv.fold_rows,
        "fold_rounds": cv.fold_rounds,
        "fold_val_rows": cv.fold_val_rows,
        "fold_converged": cv.fold_converged,
        "predict_ms_per_1k": round(1000 * cv.predict_s / max(cv.n_predicted, 1) * 1000, 3),
    }
    row = LeaderboardRow(**(fields | measured))
    if "refit_s_est" not in measured:
        row.refit_s_est = round(estimated_refit_s(row, task.n_train), 3)
    return row


def load_leaderboard(ctx: ToolContext) -> list[LeaderboardRow]:
    return Leaderboard.read(ctx.artifacts_dir)


def save_leaderboard(ctx: ToolContext, rows: list[LeaderboardRow], greater_is_better: bool) -> list[LeaderboardRow]:
    return Leaderboard.write(ctx.artifacts_dir, rows, greater_is_better)


def runner_up_name(family: str, number: int) -> str:
    """The leaderboard name of a tuning call's next-best trial (tools/tune.py `_runner_ups`)."""
    return f"{family}_trial{number}"


def is_runner_up(name: str, family: str | None = None) -> bool:
    """Whether a leaderboard name is a runner-up trial's (of `family`, or of any family)."""
    head, sep, number = name.rpartition("_trial")
    return bool(sep) and number.isdigit() and (family is None or head == family)


def save_oof(ctx: ToolContext, name: str, oof: np.ndarray) -> None:
    save_oofs(ctx, {name: oof})


def save_oofs(ctx: ToolContext, named: dict[str, np.ndarray]) -> None:
    """Store out-of-fold predictions by candidate name: one rewrite of the file for all of them."""
    path = artifact_path(ctx, paths.OOF)
    stored = dict(np.load(path)) if path.exists() else {}
    stored.update(named)
    tmp = path.with_name("oof.tmp.npz")
    np.savez_compressed(tmp, **stored)
    tmp.replace(path)


def compact_board(rows: list[LeaderboardRow], top: int = 8) -> list[dict[str, Any]]:
    return [{"name": r.name, "cv_mean": round(r.cv_mean, 5), "cv_std": round(r.cv_std, 5), "fit_s": r.fit_s}
            for r in rows[:top]]


# How a family's fit time grows with rows, as a power of the row ratio (ModelFamily.rows_exponent). Boosting pays a per-round
# cost that does not grow with rows, so 4x the rows costs ~2-3x the time (measured: XGBoost 4x rows
# 1.7x time on diamonds, 39x rows 30x time on census_kdd); the others grow about linearly or worse.
# Scoring the validation rows each boosting round (early stopping): measured 0.8 ms per round for
# 7.3k rows on diamonds, where 891 rounds took 1.0 s without it and 1.7 s with it.
ES_EVAL_S_PER_ROUND_ROW = 1.1e-7


def time_covers(left_s: float, took_s: list[float]) -> bool:
    """Whether `left_s` seconds cover what a typical (median) finished run of the same work took:
    candidates in train_models, trials in tune_model. Neither a fold nor a trial is cut short once
    started, so one started without that time overruns its budget."""
    return not took_s or left_s >= float(np.median(took_s))


def estimated_refit_s(row: dict[str, Any], n_train: int) -> float:
    """Seconds a final fit of this candidate on all training rows should take."""
    per_fold = row.get("fold_fit_s") or row.get("fit_s", 0.0)
    rows = row.get("fold_rows") or n_train
    if row.get("family") in ("ensemble", "stack"):  # their members' summed refits
        return float(row.get("refit_s_est", per_fold))
    ratio = max(1.0, n_train / max(rows, 1))
    rounds, trained = (row.get("params") or {}).get("n_estimators"), row.get("fold_rounds")
    if rounds and trained:
        # Early-stopped folds paid for scoring their validation rows every round and for the
        # patience rounds; the refit pays for neither.
        val_rows = row.get("fold_val_rows") or rows / 2
        per_fold = max(0.3 * float(per_fold), float(per_fold) - trained * val_rows * ES_EVAL_S_PER_ROUND_ROW)
        per_fold *= rounds / trained
    family = model_families().get(row.get("family", ""))
    exponent = family.rows_exponent if family else 1.0
    if family and family.converged_rows_exponent is not None and row.get("fold_converged") and converged_exponent_on():
        exponent = family.converged_rows_exponent
    return float(per_fold) * ratio ** exponent
