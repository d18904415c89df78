"""Feature selection for wide data, as a Pipeline step fitted on each fold's training rows.

On wide data (more than ~100 feature columns, or more columns than a tenth of the rows) many
columns are near-constant, duplicates of one another or nearly so, and a model fitted on a few
hundred rows chases noise in them. `WideSelection` decides on the rows it is fitted on, which in
cross-validation are the fold's training rows and for the final model the training split, so the
validation and test rows never shape the choice:
  1. drop near-constant numeric columns (one value on >= 99.5% of the rows);
  2. drop exact duplicates and columns correlated |r| >= 0.97 with one kept before it;
  3. with `importance=True` (engineer_features turns it on only when it improves CV beyond its
     standard error), keep the numeric columns whose importance in a small extra-trees model is
     at least the mean importance (scikit-learn SelectFromModel's default), and at least 10.

A dropped column is set to a constant rather than removed: the preprocessing that follows
selects columns by name (and so do the notebook and `dsagent predict`), and a constant column
is one no model can split on or weigh. Only numeric columns are considered: wide tabular data
is numeric (sensors, genes, pixels, one-hot exports), and categoricals are already encoded
compactly.

No @tool here: tools/features.py puts the step first in the preprocessing when the task's
"derived" entry carries "select" (tools/task.py decides that at define_task).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

WIDE_COLUMNS = 100
ROWS_PER_COLUMN = 10
NEAR_CONSTANT = 0.995
CORRELATED = 0.97
MIN_KEPT = 10
MIN_WIDE = 20  # columns
SAMPLE_ROWS = 5_000  # rows the correlation and importance look at (deterministic head of the fold)


def is_wide(n_columns: int, n_rows: int) -> bool:
    # A handful of columns on a tiny file is not "wide": nothing to select among.
    return n_columns > WIDE_COLUMNS or (n_columns >= MIN_WIDE and n_columns * ROWS_PER_COLUMN > n_rows)


class WideSelection(TransformerMixin, BaseEstimator):
    """Sets the numeric `columns` it judges useless on the fitted rows to 0.0 (see the module)."""

    def __init__(self, columns: list[str] | tuple[str, ...] = (), importance: bool = False, regression: bool = False,
                 seed: int = 0):
        self.columns = columns
        self.importance = importance
        self.regression = regression
        self.seed = seed

    def fit(self, X: pd.DataFrame, y=None):
        cols = [c for c in self.columns if c in X.columns]
        num = X[cols].apply(pd.to_numeric, errors="coerce").astype(float).iloc[:SAMPLE_ROWS]
        dropped: dict[str, str] = {}
        for c in cols:
            top = num[c].value_counts(dropna=False, normalize=True)
            if len(top) <= 1 or float(top.iloc[0]) >= NEAR_CONSTANT:
                dropped[c] = "near-constant"
        left = [c for c in cols if c not in dropped]
        if len(left) > 1:
            filled = num[left].fillna(num[left].median())
            corr = np.abs(np.nan_to_num(np.corrcoef(filled.to_numpy().T), nan=0.0))
            kept_idx: list[int] = []
            for i, c in enumerate(left):
                match = next((j for j in kept_idx if corr[i, j] >= CORRELATED), None)
                if match is None:
                    kept_idx.append(i)
                else:
                    same = filled[c].equals(filled[left[match]])
                    dropped[c] = f"{'duplicate of' if same else 'correlated with'} {left[match]}"
            left = [left[i] for i in kept_idx]
        if self.importance and y is not None and len(left) > MIN_KEPT:
            for c in self._unimportant(num[left], np.asarray(y)[:len(num)]):
                dropped[c] = "low importance"
        self.dropped_ = dropped
        self.input_columns_ = [str(c) for c in X.columns]
        self.n_features_in_ = X.shape[1]
        return self

    def _unimportant(self, num: pd.DataFrame, y: np.ndarray) -> list[str]:
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        model = (ExtraTreesRegressor if self.regression else ExtraTreesClassifier)(
            n_estimators=50, max_features="sqrt", min_samples_leaf=3, n_jobs=1, random_state=self.seed)
        model.fit(num.fillna(num.median()).fillna(0.0).to_numpy(), y)
        imp = model.feature_importances_
        order = np.argsort(-imp, kind="stable")
        n_keep = max(MIN_KEPT, int((imp >= imp.mean()).sum()))
        return [num.columns[i] for i in order[n_keep:]]

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if not self.dropped_:
            return X
        out = X.copy()
        for c in self.dropped_:
            out[c] = 0.0
        return out

    def get_feature_names_out(self, input_features=None):
        return np.asarray(list(input_features) if input_features is not None else list(self.input_columns_), dtype=object)


def selection_entry(kinds: dict[str, str], n_rows: int) -> dict[str, Any] | None:
    """The task's "select" setting (importance off until CV says it helps), or None on narrow data."""
    numeric = [c for c, k in kinds.items() if k == "numeric"]
    if not is_wide(len(kinds), n_rows) or len(numeric) < 2:
        return None
    return {"columns": numeric, "importance": False}
