"""Tuning trials on a Dask cluster: every worker runs trials against the one shared Optuna study.

The client (the tool worker) creates the study and its warm starts in shared storage, scatters
the training rows and folds to the workers, and gives each worker a share of --max-trials (or,
without one, the same time budget). Each worker opens the study itself, samples with its own
seed (seed + 1 + i: two workers with one seed would propose the same first trials) and records
its address and host on every trial. In parallel the sampler sees other workers' trials as they
finish, so a fixed --max-trials is not deterministic here, unlike on one machine.

Each worker sends back the OOF predictions of its own best trial only: the study's best trial is
one of those, and the leaderboard needs its OOF predictions without refitting its folds.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import numpy as np

from dsagent.tools.cluster import check_versions, connect, describe, make_storage


def shares(n_trials: int | None, n_workers: int) -> list[int | None]:
    """--max-trials split across the workers (the first ones take the remainder)."""
    if n_trials is None:
        return [None] * n_workers
    return [n_trials // n_workers + (1 if i < n_trials % n_workers else 0) for i in range(n_workers)]


def optimize_on_cluster(address: str, storage_spec: tuple[str, str], study: Any, n_trials: int | None,
                        budget_s: float, *, seed: int, objective_args: tuple) -> dict[int, np.ndarray]:
    """Run the trials on the cluster's workers; returns {trial number: OOF predictions} of each
    worker's best complete trial."""
    with connect(address) as client:
        check_versions(describe(client))
        workers = sorted(client.scheduler_info()["workers"])
        family, task, fixed, X, y, ctx, splits = objective_args
        data = client.scatter([X, y, splits], broadcast=True)
        futures = []
        for i, (worker, share) in enumerate(zip(workers, shares(n_trials, len(workers)))):
            if share == 0:
                continue
            futures.append(client.submit(
                run_trials, storage_spec, study.study_name, seed + 1 + i, share, budget_s,
                family, task, fixed, *data, ctx, workers=[worker], allow_other_workers=False, pure=False))
        found: dict[int, np.ndarray] = {}
        for result in client.gather(futures):
            found.update(result)
    return found


def run_trials(storage_spec: tuple[str, str], study_name: str, seed: int, n_trials: int | None, budget_s: float,
               family: str, task: dict[str, Any], fixed: dict[str, Any], X, y, splits, ctx) -> dict[int, np.ndarray]:
    """On a Dask worker: open the shared study and run this worker's trials."""
    import optuna
    from distributed import get_worker

    from dsagent.tools.tuning import make_objective, make_pruner, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=study_name, storage=make_storage(storage_spec), sampler=make_sampler(seed),
                              pruner=make_pruner())
    oofs: dict[int, np.ndarray] = {}
    deadline = time.time() + budget_s
    attrs = {"worker": get_worker().address, "host": socket.gethostname()}
    objective = make_objective(family, task, fixed, X, y, ctx, splits, deadline, oofs, [], attrs=attrs)
    study.optimize(objective, n_trials=n_trials, timeout=budget_s, catch=(Exception,), gc_after_trial=False)
    mine = [t for t in study.trials if t.number in oofs and t.value is not None]
    if not mine:
        return {}
    pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
    best = pick(mine, key=lambda t: t.value)
    return {best.number: oofs[best.number]}
