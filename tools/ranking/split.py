"""Group-aware splits: a query/user/session is either wholly in training or wholly in test, and
wholly inside one cross-validation fold. Otherwise the model would be scored on groups whose other
rows it was fitted on (a user's taste leaks from their training rows into their test rows)."""

from __future__ import annotations

import numpy as np

TEST_SHARE = 0.2
MAX_FOLDS = 5


def test_split(groups: np.ndarray, seed: int, test_share: float = TEST_SHARE) -> tuple[np.ndarray, np.ndarray]:
    """Row positions (train, test); about `test_share` of the groups go to test."""
    from sklearn.model_selection import GroupShuffleSplit

    n_groups = len(np.unique(groups))
    n_test = max(1, int(round(test_share * n_groups)))
    gss = GroupShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
    train, test = next(gss.split(np.zeros(len(groups)), groups=groups))
    return np.sort(train), np.sort(test)


def folds(groups: np.ndarray, seed: int, n_folds: int = MAX_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """GroupKFold over the training rows (shuffled by seed so file order does not decide the folds)."""
    from sklearn.model_selection import GroupKFold

    n = min(n_folds, len(np.unique(groups)))
    try:
        gkf = GroupKFold(n_splits=n, shuffle=True, random_state=seed)
    except TypeError:  # scikit-learn < 1.6 has no shuffle: groups are balanced by size instead
        gkf = GroupKFold(n_splits=n)
    return list(gkf.split(np.zeros(len(groups)), groups=groups))


def sample_groups(groups: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Row positions of whole groups, drawn in a seeded random order until `max_rows` rows (at least
    one group): the search and a time-capped fit see fewer groups, never parts of groups."""
    names, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(names))
    n = max(1, int(np.searchsorted(np.cumsum(sizes[order]), max_rows, side="right")))
    return np.flatnonzero(np.isin(inverse, order[:n]))
