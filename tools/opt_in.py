"""Issue 18's opt-in switches, readable by the agent process without importing an ML library
(tools/stacking.py imports scikit-learn at the top; the autopilot only asks whether it is on)."""

from __future__ import annotations

import os


def stacking_on() -> bool:
    """Stacking is opt-in (DSAGENT_STACKING=1). The development-half A/B at 60 s (with the smaller
    reserve, docs/BENCHMARKS.md) kept a stack on 1 of 18 datasets (email, within the CI of the run
    without it), so it stays off by default: on these budgets its CV rarely beats the greedy blend."""
    return os.environ.get("DSAGENT_STACKING") == "1"


BAG_FOLDS = 5  # the bag's members (tools/bagging.DEFAULT_FOLDS imports from here)


def bagging_on() -> bool:
    """Bagged final models are opt-in (DSAGENT_BAGGED=1). The development-half A/B at 60 s (2026-12-03,
    docs/BENCHMARKS.md `s9bag`) bagged 10 of 18 runs: 17 scored the same as one refit, 1 worse, and
    the deliverables took 1.22 x their reserve (five models to predict with), so it stays off."""
    return os.environ.get("DSAGENT_BAGGED") == "1"


def strong_defaults_on() -> bool:
    """The strong defaults (tools/defaults.py) are candidates in every run. DSAGENT_STRONG_DEFAULTS=0
    leaves them out: it exists for the benchmark's before/after line of that technique
    (benchmarks/automl/budget_ab.py's `no_defaults` arm), not as a user setting."""
    return os.environ.get("DSAGENT_STRONG_DEFAULTS") != "0"


def portfolio_on() -> bool:
    """Candidates and new tuning studies start from the learned portfolio (tools/portfolio.py) when
    DSAGENT_PORTFOLIO=1; otherwise from the families' builder defaults and hand-picked warm starts
    (tools/builtin_families.py). Opt-in: the confirmation-half A/B at 60 s (2026-12-03,
    docs/BENCHMARKS.md `s11`) found it 1 better, 16 same, 2 worse (hitters, house_prices)."""
    return os.environ.get("DSAGENT_PORTFOLIO") == "1"


def refit_all_on(answer: bool | None = None) -> bool:
    """Whether the shipped model is refitted on every labelled row once the test split is scored
    (tools/refit_all.py): the answers' `refit_all_rows` when given, else on unless
    DSAGENT_REFIT_ALL=0. The default since its development-half A/B at 60 s (2026-12-04,
    docs/BENCHMARKS.md `s14`): 2 better beyond the paired CI (carseats, sacramento), 16 same,
    none worse; better by point score on 12 of the 14 whose predictions changed."""
    if answer is not None:
        return bool(answer)
    return os.environ.get("DSAGENT_REFIT_ALL") != "0"


def blend_room_on() -> bool:
    """Whether the blend's refit is capped so that the refit on every labelled row still fits after
    it (DSAGENT_BLEND_ROOM=1): in the `s14` A/B, 10 of 37 runs shipped the scored model because the
    blend had taken the whole of the final fit's time. Opt-in: a smaller blend for a refit is a
    trade its own A/B decides (benchmarks/automl/budget_ab.py `blend_room`)."""
    return os.environ.get("DSAGENT_BLEND_ROOM") == "1"


def converged_exponent_on() -> bool:
    """Whether a family's fit-time estimate uses its converged_rows_exponent when every search fold
    stopped before its iteration cap (the MLP: DSAGENT_CONVERGED_EXPONENT=1), instead of its
    rows_exponent always. Opt-in: its A/B on the large development tables (2026-12-05, docs
    `s16mlp`) was worse on fertility, the one table whose MLP it reaches (0.6271 -> 0.6261 ROC-AUC),
    where the runs of one code differ more than that between sittings; three more pairs there
    (`s17mlp1-3`) were the same by the CI, and the runs did not end nearer the budget."""
    return os.environ.get("DSAGENT_CONVERGED_EXPONENT") == "1"


LARGE_ROWS = 10_000  # training rows from which a search is "large" for lightgbm_early_on


def lightgbm_early_on() -> bool:
    """Whether LightGBM is cross-validated right after the XGBoost candidates when the training
    split has LARGE_ROWS rows or more (DSAGENT_LARGE_LIGHTGBM=1), instead of after extra_trees, the
    MLP, the random forest and HistGradientBoosting: last in line, it was skipped for time on every
    dataset of the suite over 15,000 training rows but one, where it is the fast family. Opt-in: on
    the large development tables (2026-12-05, docs `s16lgb`) 1 better, 4 same, 2 worse (flights by 4%)."""
    return os.environ.get("DSAGENT_LARGE_LIGHTGBM") == "1"


def subsampled_refit_room_on() -> bool:
    """Whether the tuning plan keeps room for the refit on every labelled row when the search ran
    on a subsample of the training rows (the autopilot's `_planned_ratio`): off unless
    DSAGENT_SUBSAMPLED_REFIT_ROOM=1. There the final fit is cut to the time or re-learns XGBoost's
    rounds and the refit is mostly skipped (made on 3 of 11 such runs), so the room went unused.
    Dropping it (2026-12-05, docs/BENCHMARKS.md `s16room`): 0 better, 7 same, 0 worse on the large
    development tables, median wall 0.87 -> 0.92 x budget; 0/4/0 on the four confirmation datasets
    it reaches, 0.88 -> 0.97. The refit itself is still made when the final fit leaves room for it."""
    return os.environ.get("DSAGENT_SUBSAMPLED_REFIT_ROOM") == "1"


def coded_levels_on() -> bool:
    """Whether models that read numbers as a line (linear models and the MLP: the families with
    scaled inputs) also get a one-hot column per level of a numeric column that holds a few integer
    codes (tools/features.CodedLevels: a store id, an account-status code). Opt-in
    (DSAGENT_CODED_LEVELS=1): on the 11 development datasets with such columns (2026-12-05,
    docs/BENCHMARKS.md `s17coded`) 0 better, 9 same, 2 worse (carseats' ridge with a column per year
    of Education; car_choice). The switch shapes the pipeline itself, so a session's notebook re-creates
    its model only where the same switch is set (the run's own execution inherits it)."""
    return os.environ.get("DSAGENT_CODED_LEVELS") == "1"


def trial_blend_on() -> bool:
    """Whether tune_model also puts the next-best trials of its call on the leaderboard (two,
    as `<family>_trial<N>`, with the out-of-fold predictions their folds already made) so that the
    greedy blend can average near-equal configurations (DSAGENT_TRIAL_BLEND=1). Opt-in: on the
    development half at 60 s (2026-12-05, docs/BENCHMARKS.md `s18pool`, the runner-ups beside the
    blend's top eight candidates) 0 better, 18 same, 0 worse by the paired CI (4 better and 2 worse
    by point score)."""
    return os.environ.get("DSAGENT_TRIAL_BLEND") == "1"


def catboost_labels_on() -> bool:
    """CatBoost reads categoricals as labels through its cat_features (DSAGENT_CATBOOST_LABELS=1),
    instead of the ordinal codes the forests get. Read when the family registry is built."""
    return os.environ.get("DSAGENT_CATBOOST_LABELS") == "1"


def subsampled_cap_on() -> bool:
    """On a search run on a subsample, cap the final fit's room at a third of the search's time, as
    the blend's already is (DSAGENT_SUBSAMPLED_CAP=1). Without it the slowest top candidate keeps its
    whole refit estimate: fertility's MLP (19-20 s x 2.3) left no tuning in any run, with 32-37 s
    after the search; evaluate_model cuts such a final fit to the time it finds anyway."""
    return os.environ.get("DSAGENT_SUBSAMPLED_CAP") == "1"


def blend_all_rounds_on() -> bool:
    """The greedy blend runs all its rounds and keeps the best blend seen (DSAGENT_BLEND_ALL_ROUNDS=1)
    instead of stopping at the first round that does not improve the out-of-fold score."""
    return os.environ.get("DSAGENT_BLEND_ALL_ROUNDS") == "1"
