"""tune_model: Optuna search over one model family, on the training split only.

TPE sampler, a median pruner fed with per-fold scores, a wall-time and trial budget, warm
start from known-good configurations, and the study stored in the session (SQLite) so a run can
resume and `optuna-dashboard sqlite:///.../optuna.db` can open it. A failed trial is marked
failed and the study goes on.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from dsagent.tools import paths
from dsagent.tools.families import ModelFamily, model_families, tunable_names, unavailable
from dsagent.tools.cluster import make_storage, parse_storage
from dsagent.tools.portfolio import warm_starts
from dsagent.tools.opt_in import trial_blend_on
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, tool
from dsagent.tools.schemas import CVResult, LeaderboardRow
from dsagent.tools.task_data import search_data
from dsagent.tools.task_types import get_task_type, shape_type
from dsagent.tools.tuning import make_objective, make_pruner, make_sampler
from dsagent.tools.cv import (compact_board, cross_validate, cv_splits, is_runner_up, leaderboard_row, load_leaderboard,
                         runner_up_name, save_leaderboard, save_oofs, time_covers)


def _tunable(family: str, task: str) -> ModelFamily:
    supports = get_task_type(task).supports
    fam = model_families().get(family)
    if fam is None or not fam.tunable or not supports(fam):
        names = [f.name for f in model_families().values() if f.tunable and supports(f)]
        raise ToolError(f"family {family!r} cannot be tuned; choose one of {', '.join(names)}")
    if why := unavailable(fam):
        raise ToolError(f"{why}; install it or tune another family")
    return fam


@tool
def tune_model(ctx: ToolContext, family: str = "auto", n_trials: int | None = None,
               time_budget_s: float | None = None) -> ToolOutput:
    """Tune the hyperparameters of one model family with Optuna (TPE + median pruning).

    Cross-validated on the training split only. Warm-started from known-good configurations;
    the study is stored in the session (optuna.db) and resumes if called again. The tuned model
    joins the leaderboard as `<family>_tuned`.

    Args:
        family: xgboost, hist_gb, random_forest, extra_trees, linear or mlp (classification); auto picks the best tunable family on the leaderboard.
        n_trials: maximum number of trials (deterministic for a fixed number); default unlimited within the time budget.
        time_budget_s: seconds to spend; default what is left of the session budget minus a reserve for deliverables.
    """
    import optuna

    X, y, task = search_data(ctx)
    board = load_leaderboard(ctx)
    allowed = ctx.answers.get("model_families")
    if family == "auto":
        family = next((r.family for r in board if r.family in tunable_names() and (not allowed or r.family in allowed)),
                      "xgboost")
    if allowed and family not in allowed:
        raise ToolError(f"{family} is not among the model families the answers allow ({', '.join(allowed)})")
    # Params of the leaderboard's best variant of this family that are not searched (class
    # weights, target transform) carry over into every trial.
    base = next((r for r in board if r.family == family and not r.name.endswith("_tuned")
                 and not is_runner_up(r.name, family)), None)
    fixed = {k: v for k, v in (base.params if base else {}).items() if k in ("target_transform", "scale_pos_weight",
                                                                               "class_weight")}
    fam = _tunable(family, task.task)
    budget = time_budget_s if time_budget_s is not None else max(5.0, ctx.seconds_left(60) * 0.6)
    if n_trials is None and time_budget_s is None and ctx.deadline is None:
        n_trials = 20
    splits = cv_splits(task, X, y, ctx)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage_spec, storage_label = study_location(ctx)
    storage = make_storage(storage_spec) if storage_spec else f"sqlite:///{(ctx.artifacts_dir / paths.STUDY_DB).resolve()}"
    study = optuna.create_study(
        storage=storage,
        study_name="-".join([family, *(f"{k}={v}" for k, v in sorted(fixed.items())), task.metric]),
        direction="maximize" if task.greater_is_better else "minimize",
        sampler=make_sampler(ctx.seed),
        pruner=make_pruner(),
        load_if_exists=True,
    )
    if len(study.trials) == 0:
        for params in warm_starts(fam):
            study.enqueue_trial({k: v for k, v in params.items() if not (shape_type(task["task"]).regression and k == "C")},
                                skip_if_exists=True)
    oofs: dict[int, np.ndarray] = {}
    started = time.time()
    deadline = started + budget

    trial_s: list[float] = []  # how long each complete trial of this call took
    objective = make_objective(family, task, fixed, X, y, ctx, splits, deadline, oofs, trial_s,
                               lambda trial, cv: ctx.report(f"trial {trial.number}: {task.metric}="
                                                            f"{np.mean(cv.fold_scores):.4f}",
                                                            min(1.0, (time.time() - started) / budget)))

    def stop_when_short(study, trial) -> None:
        # Optuna checks its timeout only before a trial starts, so a trial started with a second
        # left still runs its folds (diamonds: tuning given 22.7 s took 24.6 s). Stop when the time
        # left is less than a typical complete trial of this call took. Not when a number of trials
        # was asked for (--max-trials): there, as before, only optuna's own timeout applies.
        if not time_covers(deadline - time.time(), trial_s):
            study.stop()

    if ctx.cluster:  # trials run on the cluster's workers, all against the shared study
        from dsagent.tools.cluster_tune import optimize_on_cluster

        oofs.update(optimize_on_cluster(ctx.cluster, storage_spec, study, n_trials, budget, seed=ctx.seed,
                                        objective_args=(family, task, fixed, X, y, ctx.detached(), splits)))
    else:
        study.optimize(objective, n_trials=n_trials, timeout=budget, catch=(Exception,), gc_after_trial=False,
                       callbacks=[stop_when_short] if n_trials is None else [])
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ToolError(f"no {family} trial completed within {budget:.0f}s; give tuning more time or skip it")
    best = study.best_trial
    params = {**dict(best.params), **fixed}
    oof = oofs.get(best.number)
    name = f"{family}_tuned"
    earlier = _earlier_row(board, name, params) if oof is None else None
    row_oof: dict[str, np.ndarray] = {}
    if earlier is not None:
        # The best trial is still the one an earlier call of this session found and saved (with its
        # out-of-fold predictions): keep its row rather than pay its folds again past the budget
        # (the autopilot resumes a study with the time the deliverables do not need).
        params = earlier.params
        row = earlier.model_copy(update={"trials": len(study.trials)})
    else:
        if oof is None:  # best trial came from an earlier call (resumed study): refit its folds once
            cv = cross_validate({"family": family, "params": params}, X, y, task, ctx, splits)
        else:
            cv = _trial_cv(best, oof, params)
        params = cv.refit_params
        row_oof = {name: cv.oof}
        row = leaderboard_row(name, {"family": family, "params": params}, task, y, cv, trials=len(study.trials))
    runners = _runner_ups(study, oofs, best, family, fixed, task, y) if trial_blend_on() else []
    if row_oof or runners:
        save_oofs(ctx, {**row_oof, **{n: o for n, o, _ in runners}})
    kept = [r for r in board if r.name != name and not (runners and is_runner_up(r.name, family))]
    ranked = save_leaderboard(ctx, kept + [row] + [r for _, _, r in runners], task.greater_is_better)
    states = {s.name.lower(): sum(t.state == s for t in study.trials) for s in optuna.trial.TrialState}
    summary = {
        "family": family,
        "metric": task.metric,
        "trials": {k: v for k, v in states.items() if v},
        "best_cv": round(best.value, 5),
        "best_params": {k: (round(v, 5) if isinstance(v, float) else v) for k, v in params.items()},
        "seconds": round(time.time() - started, 1),
        **({"runner_ups": [n for n, _, _ in runners]} if runners else {}),
        "leaderboard": compact_board(ranked),
        "study": f"{storage_label} (study {study.study_name}; open with optuna-dashboard)",
    }
    if ctx.cluster:
        by_worker = Counter(t.user_attrs.get("worker", "client") for t in study.trials)
        summary["cluster"] = {"trials_by_worker": dict(by_worker),
                              "note": "trials ran in parallel: the result for a fixed --max-trials is not deterministic"}
    return ToolOutput(summary=summary, record={**summary, "params": params, "leaderboard": [r.to_json() for r in ranked]},
                      files={"leaderboard": paths.LEADERBOARD,
                             **({"study": storage_label} if storage_label in (paths.STUDY_DB, paths.STUDY_JOURNAL) else {})})


def _trial_cv(trial, oof: np.ndarray, params: dict) -> CVResult:
    """A complete trial's cross-validation as its objective left it: the out-of-fold predictions it
    made, its fold scores (the pruner's intermediate values) and its timings (user attrs)."""
    return CVResult.from_timings(oof, ~np.isnan(oof if oof.ndim == 1 else oof[:, 0]),
                                 [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)],
                                 trial.user_attrs, fit_s=0.0, predict_s=0.0, n_predicted=len(oof), refit_params=params)


RUNNER_UPS = 2  # the next-best trials of a call that join the leaderboard for the blend (trial_blend_on)


def _runner_ups(study, oofs: dict[int, np.ndarray], best, family: str, fixed: dict, task, y: np.ndarray,
                keep: int = RUNNER_UPS) -> list[tuple[str, np.ndarray, LeaderboardRow]]:
    """The `keep` best complete trials of this call after the best one, as (name, out-of-fold
    predictions, leaderboard row): candidates for the greedy blend, which averages configurations
    the search scored nearly alike instead of betting on the one whose CV was luckiest (on a few
    hundred rows the folds' spread is larger than the gaps between the top trials). Their folds
    were already paid for; a trial that scored exactly as the best or as one kept (a repeated warm
    start) is skipped."""
    import optuna

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE and t.number != best.number
            and t.number in oofs and t.value is not None]
    done.sort(key=lambda t: t.value, reverse=bool(task.greater_is_better))
    seen, out = [best.value], []
    for t in done:
        if len(out) >= keep:
            break
        if any(np.isclose(t.value, v, rtol=1e-12, atol=0.0) for v in seen):
            continue
        cv = _trial_cv(t, oofs[t.number], {**dict(t.params), **fixed})
        if not cv.covered.all():
            continue
        name = runner_up_name(family, t.number)
        out.append((name, cv.oof, leaderboard_row(name, {"family": family, "params": cv.refit_params}, task, y, cv)))
        seen.append(t.value)
    return out


def _earlier_row(board: list[LeaderboardRow], name: str, params: dict) -> LeaderboardRow | None:
    """The leaderboard row an earlier call saved for these best params (their out-of-fold predictions
    are stored under its name), or None. The round count a fold early-stopped at may differ."""
    row = next((r for r in board if r.name == name), None)
    if row is None or any(row.params.get(k) != v for k, v in params.items() if k != "n_estimators"):
        return None
    return row


def study_location(ctx: ToolContext) -> tuple[tuple[str, str] | None, str]:
    """(storage spec or None for the session's SQLite file, how to name it). With a cluster and no
    --tuning-storage the study is a journal file in the session: a LocalCluster's workers share this
    machine's disk (for a remote cluster, give --tuning-storage on a shared file system or a database)."""
    if ctx.tuning_storage:
        spec = parse_storage(ctx.tuning_storage)
        return spec, spec[1]
    if ctx.cluster:
        return ("journal", str((ctx.artifacts_dir / paths.STUDY_JOURNAL).resolve())), paths.STUDY_JOURNAL
    return None, paths.STUDY_DB
