"""build_ensemble: greedy ensemble selection (Caruana et al., 2004) over the candidates'
out-of-fold predictions, kept only when it beats the best single model on the same folds, and
stacking (tools/stacking.py), kept only when it beats both.

The result is one scikit-learn estimator — a soft VotingClassifier / VotingRegressor of the
member Pipelines with integer weights — described by the spec
{"family": "ensemble", "params": {"members": [spec, ...], "weights": [...]}} that
`dsagent.tools.features.build_pipeline` rebuilds, so the notebook and the saved model stay one object.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dsagent.tools import paths
from dsagent.tools.metrics import get_metric, score
from dsagent.tools.more_rows import subsample_overrated
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, tool
from dsagent.tools.task_data import search_data
from dsagent.tools.task_types import prediction_of
from dsagent.tools.schemas import CVResult, LeaderboardRow, TaskSpec
from dsagent.tools.opt_in import blend_all_rounds_on, stacking_on
from dsagent.tools.stacking import MAX_MEMBERS, fit_level2, level2_inputs, level2_oof, write_stacking_record
from dsagent.tools.cv import (compact_board, cv_splits, estimated_refit_s, is_runner_up, leaderboard_row,
                                 load_leaderboard, save_leaderboard, save_oof)


def _pred(task: TaskSpec, oof: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    if prediction_of(task["task"]) == "regression":
        return oof, None
    return oof.argmax(axis=1), oof


def fold_scores(task: TaskSpec, metric, y: np.ndarray, oof: np.ndarray,
                splits: list[tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """The metric on each fold's validation rows: the same measure as the leaderboard's cv_mean."""
    out = []
    for _, va in splits:
        pred, proba = _pred(task, oof[va])
        out.append(score(metric, y[va], pred, proba))
    return out


def greedy_selection(task: TaskSpec, metric, y: np.ndarray, oofs: list[np.ndarray],
                     splits: list[tuple[np.ndarray, np.ndarray]], rounds: int = 30,
                     cost: list[float] | None = None, max_cost: float | None = None) -> tuple[list[int], float]:
    """Caruana's forward selection with replacement. Returns per-member counts and the CV score.

    Starts from the best single model; each round adds the member (possibly again) whose addition
    gives the best mean fold score, and stops after a round that does not improve it. A member
    whose refit cost would push the total over `max_cost` is not added."""
    sign = 1.0 if metric.greater_is_better else -1.0

    def value(counts: np.ndarray) -> float:
        blend = sum(c * o for c, o in zip(counts, oofs) if c) / counts.sum()
        return float(np.mean(fold_scores(task, metric, y, blend, splits)))

    singles = [value(np.eye(len(oofs))[i]) for i in range(len(oofs))]
    best_i = int(np.argmax([sign * s for s in singles]))
    counts = np.zeros(len(oofs))
    counts[best_i] = 1
    current = singles[best_i]
    # Opt-in: every round is run and the best blend seen is kept (Caruana et al.'s selection, as
    # AutoGluon's weighted ensemble runs it); by default the first round that does not improve ends it.
    all_rounds = blend_all_rounds_on()
    best_counts, best_value = counts.copy(), current
    for _ in range(rounds):
        used_cost = sum(cost[i] for i in range(len(oofs)) if counts[i]) if cost else 0.0
        trial_values = []
        for i in range(len(oofs)):
            if cost and max_cost is not None and not counts[i] and used_cost + cost[i] > max_cost:
                trial_values.append(None)
                continue
            trial = counts.copy()
            trial[i] += 1
            trial_values.append(value(trial))
        options = [(sign * v, i) for i, v in enumerate(trial_values) if v is not None]
        if not options:
            break
        best_v, i = max(options)
        if best_v <= sign * current + 1e-12 and not all_rounds:
            break
        counts[i] += 1
        current = sign * best_v
        if sign * current > sign * best_value + 1e-12:
            best_counts, best_value = counts.copy(), current
    return [int(c) for c in best_counts], best_value


@tool
def build_ensemble(ctx: ToolContext, max_members: int = 8, max_refit_s: float | None = None, stack: bool = True) -> ToolOutput:
    """Blend the best leaderboard candidates by greedy ensemble selection on their out-of-fold
    predictions (training split only), and try stacking them: a level-2 logistic / ridge model on
    those predictions, scored by its own cross-validation. The blend joins the leaderboard as
    `ensemble` only if its cross-validated score beats the best single candidate on the same folds;
    the stack joins as `stack` only if it beats both; otherwise nothing changes. Where train_models'
    second look on more rows reversed the subsample's order, the families it ruled against are
    left out (the subsample's predictions over-rate them).

    Args:
        max_members: how many of the top candidates may be blended.
        max_refit_s: cap on the estimated seconds to refit all members on the full training split (keeps the final fit within the budget); default no cap.
        stack: also try stacking when the environment variable DSAGENT_STACKING=1 turns it on (opt-in: the development-half A/B kept it on 1 of 18 datasets).
    """
    summary, record = blend(ctx, max_members, max_refit_s, stack)
    if not (summary.get("kept") or (summary.get("stacking") or {}).get("kept")):
        return ToolOutput(summary=summary, record=record)
    return ToolOutput(summary=summary, record=record, files={"leaderboard": paths.LEADERBOARD})


def blend(ctx: ToolContext, max_members: int = 8, max_refit_s: float | None = None, stack: bool = True) -> tuple[dict, dict]:
    """The work of build_ensemble (also run at the end of tune_model(ensemble=True))."""
    started = time.time()
    X, y, task = search_data(ctx)
    metric = get_metric(task.metric, task.task)
    everything = load_leaderboard(ctx)
    board = [r for r in everything if r.family not in COMBINED]
    oof_path = ctx.artifacts_dir / paths.OOF
    if not board or not oof_path.exists():
        raise ToolError("no candidates yet; call train_models first")
    stored = dict(np.load(oof_path))
    overrated = subsample_overrated(board, metric.greater_is_better)
    usable = [r for r in board if r.family != "baseline" and r.family not in overrated and r.name in stored
              and len(stored[r.name]) == len(y)]
    # A tuning call's runner-up trials (opt-in) join the pool beside the top candidates, not in
    # their places: counted among them they pushed the linear model out of abalone's blend and
    # XGBoost out of swiss_labor's (docs/BENCHMARKS.md `s18trial`).
    pool = [r for r in usable if not is_runner_up(r.name)][:max_members]
    pool += [r for r in usable if is_runner_up(r.name) and any(p.family == r.family for p in pool)]
    if len(pool) < 2:
        out = {"kept": False, "reason": "fewer than two candidates with out-of-fold predictions"}
        write_stacking_record(ctx, {"tried": False, "kept": False, "reason": out["reason"]})
        return out, out
    splits = cv_splits(task, X, y, ctx)
    covered = np.ones(len(y), dtype=bool)
    for r in pool:
        o = stored[r.name]
        covered &= ~np.isnan(o if o.ndim == 1 else o[:, 0])
    covered_idx = np.flatnonzero(covered)
    # Folds restricted to rows every member predicted (all of them for K-fold).
    pos = np.full(len(y), -1)
    pos[covered_idx] = np.arange(len(covered_idx))
    folds = [(np.empty(0, int), pos[va][pos[va] >= 0]) for _, va in splits]
    folds = [f for f in folds if len(f[1])]
    oofs = [stored[r.name][covered_idx] for r in pool]
    yc = y[covered_idx]
    cost = [estimated_refit_s(r, task.n_train) for r in pool]
    counts, value = greedy_selection(task, metric, yc, oofs, folds, cost=cost, max_cost=max_refit_s)
    best_single = pool[0]
    single_value = float(np.mean(fold_scores(task, metric, yc, oofs[0], folds)))
    sign = 1.0 if metric.greater_is_better else -1.0
    members = [i for i, c in enumerate(counts) if c]
    kept = len(members) >= 2 and sign * value > sign * single_value + 1e-9
    summary: dict[str, Any] = {
        "metric": metric.name, "best_single": best_single.name, "best_single_cv": round(single_value, 6),
        "ensemble_cv": round(value, 6), "weights": {pool[i].name: counts[i] for i in members},
        "kept": bool(kept),
    }
    rows: list[LeaderboardRow] = []
    spec = None
    if kept:
        blended = sum(counts[i] * oofs[i] for i in members) / sum(counts[i] for i in members)
        spec = {"family": "ensemble", "params": {
            "members": [{"family": pool[i].family, "params": pool[i].params} for i in members],
            "weights": [counts[i] for i in members],
            "names": [pool[i].name for i in members],
        }}
        rows.append(_combined_row(ctx, "ensemble", spec, task, metric, y, yc, blended, covered, folds,
                                  [pool[i] for i in members], sum(cost[i] for i in members)))
    else:
        summary["reason"] = "the blend does not beat the best single model on the same folds"
    stacked = try_stacking(ctx, task, metric, pool, oofs, yc, folds, cost, max_refit_s, single_value,
                           value if kept else None, enabled=stack and stacking_on())
    summary["stacking"] = stacked.pop("summary")
    write_stacking_record(ctx, summary["stacking"])
    if stacked:
        rows.append(_combined_row(ctx, "stack", stacked["spec"], task, metric, y, yc, stacked["oof"], covered, folds,
                                  stacked["members"], stacked["refit_s"]))
    summary["seconds"] = round(time.time() - started, 2)
    if not rows:
        return summary, summary
    # A blend or stack from an earlier call (before more tuning) stays unless a new one replaces it.
    earlier = [r for r in everything if r.family in COMBINED and r.name not in {row.name for row in rows}]
    ranked = save_leaderboard(ctx, board + earlier + rows, task.greater_is_better)
    summary["leaderboard"] = compact_board(ranked)
    return summary, {**summary, "spec": spec, "leaderboard": [r.to_json() for r in ranked]}


COMBINED = ("ensemble", "stack")  # rows made of other rows: never members themselves


def _combined_row(ctx: ToolContext, name: str, spec: dict, task: TaskSpec, metric, y: np.ndarray, yc: np.ndarray,
                  oof_c: np.ndarray, covered: np.ndarray, folds, members: list[LeaderboardRow], refit_s: float) -> LeaderboardRow:
    """The leaderboard row of a blend or stack (`oof_c`: its predictions on the covered rows), with its
    out-of-fold predictions saved. Its costs are its members' (summed), not timings of its own."""
    oof_full = np.full((len(y),) + oof_c.shape[1:], np.nan)
    oof_full[covered] = oof_c
    scores = fold_scores(task, metric, yc, oof_c, folds)
    cv = CVResult(oof=oof_full, covered=covered, fold_scores=scores, fit_s=sum(m.fit_s for m in members), predict_s=0.0,
                  n_predicted=int(covered.sum()), refit_params=spec["params"])
    save_oof(ctx, name, oof_full)
    return leaderboard_row(name, spec, task, y, cv, fold_fit_s=None, refit_s_est=round(refit_s, 3),
                           predict_ms_per_1k=round(sum(m.predict_ms_per_1k for m in members), 3))


def try_stacking(ctx: ToolContext, task: TaskSpec, metric, pool: list[LeaderboardRow], oofs: list[np.ndarray],
                 yc: np.ndarray, folds, cost: list[float], max_refit_s: float | None, single_value: float,
                 blend_value: float | None, enabled: bool = True) -> dict[str, Any]:
    """{"summary": {tried, kept, reason, ...}} plus, when the stack is kept, its "spec", "oof" (on the
    covered rows), "members" (rows) and "refit_s". Kept only when its honest CV score beats the best
    single model and the greedy blend (when one was kept) on the same folds."""
    if not enabled:
        return {"summary": {"tried": False, "kept": False, "reason": "stacking is off by default (it beat the greedy blend on 1 of 18 development datasets); DSAGENT_STACKING=1 turns it on"}}
    if task.split.kind == "time":
        return {"summary": {"tried": False, "kept": False, "reason": "a time split: a level-2 model fitted on other "
                            "folds would learn from later rows"}}
    # The top candidates whose refits fit the time the final fit may take, best first.
    chosen, spent = [], 0.0
    for i in range(len(pool)):
        if len(chosen) < MAX_MEMBERS and (max_refit_s is None or spent + cost[i] <= max_refit_s or not chosen):
            chosen.append(i)
            spent += cost[i]
    if len(chosen) < 2:
        return {"summary": {"tried": False, "kept": False, "reason": "fewer than two candidates fit the final fit's time"}}
    kind = prediction_of(task["task"])
    n_classes = len(task.classes) if task.classes else 0
    Z = level2_inputs(kind, [oofs[i] for i in chosen])
    try:
        oof = level2_oof(kind, Z, yc, [va for _, va in folds], n_classes, ctx.seed)
        params = fit_level2(kind, Z, yc, n_classes, ctx.seed)
    except ValueError as exc:  # a class missing from some level-2 training rows
        return {"summary": {"tried": True, "kept": False, "reason": f"level-2 model not fitted: {exc}"}}
    value = float(np.mean(fold_scores(task, metric, yc, oof, folds)))
    sign = 1.0 if metric.greater_is_better else -1.0
    rival, rival_name = (single_value, pool[0].name) if blend_value is None else (blend_value, "the greedy blend")
    kept = sign * value > sign * rival + 1e-9
    out = {"tried": True, "kept": bool(kept), "members": [pool[i].name for i in chosen], "stack_cv": round(value, 6),
           "best_single_cv": round(single_value, 6), "blend_cv": None if blend_value is None else round(blend_value, 6),
           "reason": (f"its cross-validated {metric.name} {value:.5g} beats {rival_name} ({rival:.5g}) on the same folds"
                      if kept else f"its cross-validated {metric.name} {value:.5g} does not beat {rival_name} "
                      f"({rival:.5g}) on the same folds")}
    if not kept:
        return {"summary": out}
    spec = {"family": "stack", "params": {"members": [{"family": pool[i].family, "params": pool[i].params} for i in chosen],
                                          "names": [pool[i].name for i in chosen], **params}}
    return {"summary": out, "spec": spec, "oof": oof, "members": [pool[i] for i in chosen], "refit_s": spent}
