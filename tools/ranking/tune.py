"""Optuna tuning of the LightGBM and XGBoost rankers (issue 20): TPE over each library's main
settings, every trial cross-validated on the search's own GroupKFold folds of the training groups
(no group cut, the test groups never seen), its objective the mean NDCG@k over the folds. Trials
are pruned fold by fold (median rule) and stopped at the deadline, so tuning stays inside the
search's budget; the best trial becomes a leaderboard row whose parameters the final fit and the
notebook reuse.

Each study starts from a known-good setting (a slower learning rate, more rounds, row and column
sampling), then TPE explores; the library defaults are on the leaderboard already
(models.DEFAULTS), so the tuned row only has to beat them on the same folds.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from dsagent.tools.ranking import metrics, models

WARM_STARTS = {
    "lightgbm": {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20,
                 "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 1.0},
    "xgboost": {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 6, "min_child_weight": 5.0,
                "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 1.0},
}


def search_space(family: str, trial) -> dict[str, Any]:
    """The ranker settings a trial draws (the boosting rounds included: rankers are not early-stopped here)."""
    p = {"n_estimators": trial.suggest_int("n_estimators", 50, 500, step=50),
         "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
         "subsample": trial.suggest_float("subsample", 0.5, 1.0),
         "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
         "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30, log=True)}
    if family == "lightgbm":
        return p | {"num_leaves": trial.suggest_int("num_leaves", 7, 127, log=True),
                    "min_child_samples": trial.suggest_int("min_child_samples", 5, 200, log=True),
                    "subsample_freq": 1}  # LightGBM samples rows only with a bagging frequency
    return p | {"max_depth": trial.suggest_int("max_depth", 2, 10),
                "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20, log=True)}


def tune(family: str, X, grades: np.ndarray, groups: np.ndarray, cv: list, rec: dict[str, Any], seed: int,
         budget_s: float, progress: Callable[[str], None] = lambda m: None) -> dict[str, Any] | None:
    """Tune one family's ranker for at most `budget_s` seconds on the folds `cv` of (X, grades, groups).
    Returns {"name", "params", "trials", "fold_tables", "seconds"} for the best complete trial (its
    per-group metrics on each fold, its own seconds), or None when no trial completed in time."""
    import optuna

    from dsagent.tools.tuning import make_pruner, make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = models.TUNED[family]
    deadline = time.monotonic() + budget_s
    done: dict[int, tuple[list, float]] = {}  # trial number -> (per-group metrics of each fold, seconds)

    def objective(trial) -> float:
        t0, folds = time.monotonic(), []
        params = search_space(family, trial)
        for i, (a, b) in enumerate(cv):
            if time.monotonic() > deadline:  # a trial that cannot finish its folds is abandoned
                raise optuna.TrialPruned()
            fitted = models.fit(name, X.iloc[a], grades[a], groups[a], rec["categorical"], rec["numeric"], rec["k"],
                                rec["relevance_threshold"], seed, params)
            folds.append(metrics.per_group(grades[b], fitted.score(X.iloc[b]), groups[b], rec["k"],
                                           rec["relevance_threshold"]))
            trial.report(metrics.summarize(folds[-1])["ndcg"], i)
            if trial.should_prune():
                raise optuna.TrialPruned()
        done[trial.number] = (folds, time.monotonic() - t0)
        return float(np.nanmean([metrics.summarize(f)["ndcg"] for f in folds]))

    def stop_when_short(study, trial) -> None:
        # Optuna checks its timeout only before a trial starts: stop when a typical trial no longer fits.
        typical = float(np.median([s for _, s in done.values()])) if done else 0.0
        if deadline - time.monotonic() < typical:
            study.stop()

    study = optuna.create_study(direction="maximize", sampler=make_sampler(seed), pruner=make_pruner())
    study.enqueue_trial(WARM_STARTS[family])
    study.optimize(objective, timeout=budget_s, callbacks=[stop_when_short], gc_after_trial=False)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        return None
    best = max(complete, key=lambda t: t.value)
    folds, seconds = done[best.number]
    progress(f"{name}: {len(study.trials)} trials, best NDCG@{rec['k']} {best.value:.4f}")
    return {"name": name, "params": search_space(family, optuna.trial.FixedTrial(best.params)),
            "trials": len(study.trials), "fold_tables": folds, "seconds": seconds}
