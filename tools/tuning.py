"""The Optuna pieces of tuning: sampler, pruner and the trial objective. A library module (no
@tool): tune_model runs them in this process, and cluster_tune on Dask workers, which import
them by module path.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from dsagent.tools.cv import OutOfTime, cross_validate
from dsagent.tools.families import model_families
from dsagent.tools.registry import ToolContext
from dsagent.tools.task_types import prediction_of


def make_sampler(seed: int):
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True)


def make_pruner():
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


def make_objective(family: str, task: dict[str, Any], fixed: dict[str, Any], X, y, ctx: ToolContext, splits,
                   deadline: float, oofs: dict[int, np.ndarray], trial_s: list[float], on_done=None,
                   attrs: dict[str, Any] | None = None):
    """One trial: cross-validate the suggested params, pruned per fold and at the deadline. Each
    complete trial's OOF predictions land in `oofs`, its seconds in `trial_s`; `attrs` are set on
    every trial (a cluster worker records who ran it). Module-level so Dask workers run the same code."""
    import optuna

    def objective(trial):
        trial_started = time.time()
        for key, value in (attrs or {}).items():
            trial.set_user_attr(key, value)
        # families are built for the prediction shape
        params = {**model_families()[family].search_space(trial, prediction_of(task["task"])), **fixed}
        spec = {"family": family, "params": params}

        def on_fold(i, value):
            trial.report(value, i)
            if trial.should_prune():
                raise optuna.TrialPruned()

        try:  # a trial whose remaining folds would overrun the budget is abandoned (pruned)
            cv = cross_validate(spec, X, y, task, ctx, splits, on_fold=on_fold, deadline=deadline)
        except OutOfTime:
            raise optuna.TrialPruned() from None
        oofs[trial.number] = cv.oof
        trial_s.append(time.time() - trial_started)
        for key, value in cv.timings().items():  # kept in the study: a resumed call rebuilds the result
            trial.set_user_attr(key, value)
        if on_done is not None:
            on_done(trial, cv)
        return float(np.mean(cv.fold_scores))

    return objective
