"""The features an unsupervised model sees, as a ColumnTransformer inside its Pipeline.

Distances drive every method here, so every column must be on one scale: numbers are imputed
(median) and standardised, low-cardinality categories one-hot encoded (each level scaled down
so one category is not worth more than one standardised number). Columns that only identify a
row (ids, free text, near-unique strings), dates and the known-anomaly label are left out: a
distance on them means nothing, and the label must never reach a fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from dsagent.tools.features import ToStrings
from dsagent.tools.registry import ToolError

MAX_LEVELS = 20  # a categorical column with more levels than this is an identifier, not a feature


def left_out(answers: dict[str, Any], columns: list[str]) -> list[str]:
    """Columns no distance may use: `id_columns`, and, when the user listed the columns that describe
    the rows (`features_at_prediction_time`, asked when some column looks like an outcome), all others."""
    out = list(answers.get("id_columns") or [])
    chosen = answers.get("features_at_prediction_time")
    if isinstance(chosen, list) and chosen:
        missing = [c for c in chosen if c not in columns]
        if missing:
            raise ToolError(f"features_at_prediction_time names column(s) the data lacks: {', '.join(map(repr, missing))}")
        out += [c for c in columns if c not in chosen]
    return out


def feature_columns(df: pd.DataFrame, exclude: list[str]) -> dict[str, list[str]]:
    """{'numeric': [...], 'categorical': [...], 'dropped': [...]} for the columns of `df`."""
    numeric, categorical, dropped = [], [], []
    n = max(len(df), 1)
    for col in df.columns:
        if col in exclude:
            continue
        s = df[col]
        if pd.api.types.is_bool_dtype(s):
            categorical.append(col)
        elif pd.api.types.is_numeric_dtype(s):
            # A whole-number column unique in every row is a row id (customer_id), not a measurement.
            whole = pd.api.types.is_integer_dtype(s)
            if s.nunique(dropna=True) <= 1 or (whole and s.nunique() == n and n > 20):
                dropped.append(col)
            else:
                numeric.append(col)
        elif pd.api.types.is_datetime64_any_dtype(s):
            dropped.append(col)
        else:
            levels = s.nunique(dropna=True)
            (categorical if 1 < levels <= MAX_LEVELS else dropped).append(col)
    if not numeric and not categorical:
        raise ToolError("no usable feature columns (numbers or categories with at most "
                        f"{MAX_LEVELS} levels); check the data file")
    return {"numeric": numeric, "categorical": categorical, "dropped": dropped}


def build_preprocessor(groups: dict[str, list[str]]) -> ColumnTransformer:
    parts: list[tuple[str, Any, list[str]]] = []
    if groups["numeric"]:
        parts.append(("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
                      groups["numeric"]))
    if groups["categorical"]:
        enc = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        parts.append(("cat", make_pipeline(ToStrings(), SimpleImputer(strategy="constant", fill_value="__missing__"), enc,
                                           StandardScaler(with_mean=False)), groups["categorical"]))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0, verbose_feature_names_out=False)


def as_matrix(pre: ColumnTransformer, X: pd.DataFrame) -> np.ndarray:
    return np.asarray(pre.transform(X), dtype=float)


def standardized_table(X: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    """Readable per-feature columns for descriptions: numbers as they are, each category level as
    a 0/1 share column named `col=level` (what a reader can say of a segment: '80% are level')."""
    parts = [X[groups["numeric"]].apply(pd.to_numeric, errors="coerce").astype(float)] if groups["numeric"] else []
    for col in groups["categorical"]:
        values = X[col].astype(str)
        for level in values.value_counts().index[:MAX_LEVELS]:
            parts.append((values == level).astype(float).rename(f"{col}={level}").to_frame())
    return pd.concat(parts, axis=1) if parts else pd.DataFrame(index=X.index)
