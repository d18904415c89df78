"""XGBoost on every training row with `xgboost.dask`, within a time budget (train_on_cluster's model).

The data become one DaskQuantileDMatrix per side, built once (each worker holds its own partitions). Under a
time budget two short calls measure the cost of a boosting round: one round, then five more continued
from it; each call pays the same fixed cost (the workers' local DMatrix, the tracker), so the difference
is five rounds' time. The rounds left are capped to what half the budget affords, and training continues
from the probe's trees with early stopping on the distributed validation rows. A wall-clock callback
could not stop it safely: each worker would decide alone, and the allreduce would wait for the others.
"""

from __future__ import annotations

import time
from typing import Any

PROBE_ROUNDS, MIN_ROUNDS, EARLY_STOP = 5, 10, 20


def objective(kind: str, n_classes: int) -> dict[str, Any]:
    if kind == "regression":
        return {"objective": "reg:squarederror", "eval_metric": "rmse"}
    if kind == "binary":
        return {"objective": "binary:logistic", "eval_metric": "logloss"}
    return {"objective": "multi:softprob", "num_class": n_classes, "eval_metric": "mlogloss"}


def train_xgboost(client: Any, kind: str, n_classes: int, fit: Any, valid: Any, features: list[str], label: str,
                  seed: int, n_estimators: int, time_budget_s: float | None) -> tuple[Any, dict[str, Any]]:
    """(the booster cut at its best iteration, timing facts for the record)."""
    import xgboost.dask as xgb_dask

    start = time.time()
    # Quantile matrices (the `hist` bins, one byte a value) built from float32 partitions: a DaskDMatrix
    # keeps float32 copies of every value beside the float64 partitions, which pushed each worker of the
    # 10M-row benchmark past its memory limit, and a restarted worker ends xgboost.dask's training.
    as32 = {c: "float32" for c in features}
    dtrain = xgb_dask.DaskQuantileDMatrix(client, fit[features].astype(as32), fit[label])
    dvalid = xgb_dask.DaskQuantileDMatrix(client, valid[features].astype(as32), valid[label], ref=dtrain)
    params = {"tree_method": "hist", "learning_rate": 0.1, "max_depth": 6, "seed": seed, **objective(kind, n_classes)}
    probe, rounds, per_round = None, n_estimators, None
    if time_budget_s:
        t0 = time.time()
        one = xgb_dask.train(client, params, dtrain, num_boost_round=1)["booster"]
        t1 = time.time()
        probe = xgb_dask.train(client, params, dtrain, num_boost_round=PROBE_ROUNDS, xgb_model=one)["booster"]
        t2 = time.time()
        per_round = max((t2 - t1) - (t1 - t0), 1e-3) / (PROBE_ROUNDS - 1)
        fixed = max((t1 - t0) - per_round, 0.0)
        left = 0.5 * time_budget_s - (t2 - start) - fixed
        rounds = int(min(n_estimators, max(MIN_ROUNDS, left / per_round)))
    out = xgb_dask.train(client, params, dtrain, num_boost_round=rounds, evals=[(dvalid, "valid")],
                         early_stopping_rounds=EARLY_STOP, xgb_model=probe, verbose_eval=False)
    booster = out["booster"]
    best = int(getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1))
    facts = {"params": params, "seconds": round(time.time() - start, 1), "rounds_allowed": rounds + (1 + PROBE_ROUNDS if probe else 0),
             "capped_by_time": rounds < n_estimators, "best_iteration": best,
             "seconds_per_round": round(per_round, 4) if per_round else None}
    return booster[: best + 1], facts
