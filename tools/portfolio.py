"""The learned portfolio (issue 18's zero-shot step): per model family, a few configurations that
did well across the development half of the benchmark suite, in the order they add the most
expected score per second of cross-validation. A family's candidate in train_models is its first
pick, and tuning tries the others before Optuna's sampler takes over, so a short search starts
from configurations proven on other data rather than from one guess.

Where they come from: `benchmarks/automl/portfolio.py` cross-validated a coarse grid per family on
the training split of each development dataset (never the confirmation half, never a test split)
and picked greedily; its record is benchmarks/results/portfolio.json, which tests/test_portfolio.py
holds this table to. The portfolio is used when DSAGENT_PORTFOLIO=1 (tools/opt_in.py says why it is
not the default); a family without picks (plugins, linear) keeps its own warm starts.
"""

from __future__ import annotations

from typing import Any

from dsagent.tools.families import ModelFamily
from dsagent.tools.opt_in import portfolio_on

PICKS: dict[str, tuple[dict[str, Any], ...]] = {
    "xgboost": (
        {"learning_rate": 0.12, "max_depth": 3, "min_child_weight": 1.0, "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 1.0, "reg_alpha": 1e-8},
        {"learning_rate": 0.12, "max_depth": 3, "min_child_weight": 5.0, "subsample": 0.7, "colsample_bytree": 0.5, "reg_lambda": 1.0, "reg_alpha": 1e-8},
        {"learning_rate": 0.04, "max_depth": 3, "min_child_weight": 5.0, "subsample": 0.7, "colsample_bytree": 0.5, "reg_lambda": 1.0, "reg_alpha": 1e-8},
    ),
    "hist_gb": (
        {"learning_rate": 0.12, "max_iter": 200, "max_leaf_nodes": 15, "min_samples_leaf": 10, "l2_regularization": 1.0},
        {"learning_rate": 0.04, "max_iter": 400, "max_leaf_nodes": 63, "min_samples_leaf": 40, "l2_regularization": 1.0},
        {"learning_rate": 0.04, "max_iter": 400, "max_leaf_nodes": 15, "min_samples_leaf": 10, "l2_regularization": 1.0},
    ),
    "lightgbm": (
        {"learning_rate": 0.12, "n_estimators": 200, "num_leaves": 15, "min_child_samples": 10, "subsample": 0.7, "colsample_bytree": 0.5, "reg_lambda": 1.0},
        {"learning_rate": 0.04, "n_estimators": 400, "num_leaves": 63, "min_child_samples": 40, "subsample": 0.7, "colsample_bytree": 0.5, "reg_lambda": 1.0},
        {"learning_rate": 0.04, "n_estimators": 400, "num_leaves": 15, "min_child_samples": 10, "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 1.0},
    ),
    "extra_trees": (
        {"min_samples_leaf": 3, "max_features": 0.3},
        {"min_samples_leaf": 3, "max_features": 0.6},
        {"min_samples_leaf": 10, "max_features": 1.0},
    ),
    "random_forest": (
        {"min_samples_leaf": 3, "max_features": 0.3},
        {"min_samples_leaf": 10, "max_features": 0.3},
        {"min_samples_leaf": 1, "max_features": 0.3},
    ),
    "mlp": (
        {"alpha": 1.0, "learning_rate_init": 0.003},
        {"alpha": 0.1, "learning_rate_init": 0.001},
        {"alpha": 1.0, "learning_rate_init": 0.001},
    ),
}


def _picks(family: str) -> tuple[dict[str, Any], ...]:
    """The family's picks while the portfolio is on; none otherwise, or for a family without any."""
    return PICKS.get(family, ()) if portfolio_on() else ()


def first_pick(family: str) -> dict[str, Any]:
    """The configuration a family's candidate is cross-validated with in train_models: the
    portfolio's first pick when it is on, else {} (the family's builder defaults)."""
    picks = _picks(family)
    return dict(picks[0]) if picks else {}


def warm_starts(family: ModelFamily) -> tuple[dict[str, Any], ...]:
    """The configurations a new study of this family enqueues before sampling: the portfolio's
    other picks when it is on (the first is already on the leaderboard as the candidate), else
    the family's own warm starts."""
    picks = _picks(family.name)
    return picks[1:] if picks else family.warm_starts
