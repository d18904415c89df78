"""Preprocessing and model families as scikit-learn Pipelines that predict on raw rows.

All preprocessing lives inside the Pipeline, so cross-validation folds never see each other
and the saved artifact accepts the original columns. A model is described by a plain spec
({family, params}) that travels between tools as JSON; `build_pipeline` turns it into an
estimator. Custom transformers here are few and small because skops must be told to trust them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

from dsagent.tools.opt_in import coded_levels_on
from dsagent.tools.task_types import shape_type, task_types
from dsagent.tools.threads import native_threads  # noqa: F401  (here too: callers import it from features)
from dsagent.tools.timestamps import parse_times

HIGH_CARDINALITY = 30
RARE = 5  # fewer rows than this do not earn a one-hot column or a missing-indicator of their own
FEATURE_KINDS = ("numeric", "categorical", "boolean", "datetime", "text")


class _StatelessColumns(TransformerMixin, BaseEstimator):
    """A transformer that learns nothing but the names of the columns it was fitted on."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _input_names(self, input_features=None):
        if input_features is None:
            input_features = getattr(self, "feature_names_in_", [f"x{i}" for i in range(self.n_features_in_)])
        return input_features


CODED_LEVELS = (3, 12)  # distinct integer values of a numeric column that may be codes, not amounts


class CodedLevels(TransformerMixin, BaseEstimator):
    """A one-hot column per level of each numeric column that holds a few integer codes.

    A linear model or a network reads a number as a line: a store id (oj's StoreID 1-7) or an
    account-status code (german_credit's 0-3) then means "more of something", which it is not. Trees
    cut such a column anywhere and need no help. Fitted on the training rows: a column qualifies
    when its values there are integers with 3 to 12 distinct levels (two levels are already a line);
    a level seen on fewer than RARE rows gets no column (its rows get zeros, like an unseen level).
    The scaled number stays beside these columns, so an ordered code (bathrooms) keeps its trend."""

    def fit(self, X, y=None):
        frame = X if hasattr(X, "columns") else pd.DataFrame(X)
        self.n_features_in_ = frame.shape[1]
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        values = self._numbers(frame)
        self.columns_, self.levels_ = [], []
        for j in range(values.shape[1]):
            seen = values[:, j][~np.isnan(values[:, j])]
            levels, counts = np.unique(seen, return_counts=True)
            if not CODED_LEVELS[0] <= len(levels) <= CODED_LEVELS[1] or not np.all(levels == np.round(levels)):
                continue
            kept = [float(v) for v, n in zip(levels, counts) if n >= RARE]
            if len(kept) >= CODED_LEVELS[0]:
                self.columns_.append(j)
                self.levels_.append(kept)
        return self

    @staticmethod
    def _numbers(frame: pd.DataFrame) -> np.ndarray:
        return frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    def transform(self, X):
        values = self._numbers(X if hasattr(X, "columns") else pd.DataFrame(X))
        blocks = [(values[:, [j]] == np.asarray(levels)[None, :]).astype(float)
                  for j, levels in zip(self.columns_, self.levels_)]
        return np.hstack(blocks) if blocks else np.empty((len(values), 0))

    def get_feature_names_out(self, input_features=None):
        names = input_features if input_features is not None else self.feature_names_in_
        return np.asarray([f"{names[j]}={v:g}" for j, levels in zip(self.columns_, self.levels_) for v in levels],
                          dtype=object)


class DatetimeParts(_StatelessColumns):
    """Datetime-like columns -> year, month, day of week, hour, and days since 1970 (NaN kept)."""

    def transform(self, X):
        frame = pd.DataFrame(X)
        parts = []
        for col in frame.columns:
            ts = parse_times(frame[col])
            parts += [ts.dt.year, ts.dt.month, ts.dt.day_of_week, ts.dt.hour,
                      (ts - pd.Timestamp("1970-01-01")).dt.total_seconds() / 86400.0]
        return np.column_stack([np.asarray(p, dtype=float) for p in parts]) if parts else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None):
        names = self._input_names(input_features)
        return np.array([f"{c}_{p}" for c in names for p in ("year", "month", "dow", "hour", "days")], dtype=object)


class TextColumn(TransformerMixin, BaseEstimator):
    """One free-text column -> TF-IDF. Missing text becomes the empty string. Kept so models saved
    before dsagent.tools.text.TextFeatures still load; new pipelines use that."""

    def __init__(self, max_features: int = 500):
        self.max_features = max_features

    def _docs(self, X):
        col = X.iloc[:, 0] if hasattr(X, "iloc") else np.asarray(X)[:, 0]
        return pd.Series(col).fillna("").astype(str).tolist()

    def fit(self, X, y=None):
        self.vectorizer_ = TfidfVectorizer(max_features=self.max_features, min_df=2, sublinear_tf=True)
        try:
            self.vectorizer_.fit(self._docs(X))
        except ValueError:  # vocabulary empty after min_df: fall back to keeping every term
            self.vectorizer_ = TfidfVectorizer(max_features=self.max_features, sublinear_tf=True).fit(self._docs(X))
        return self

    def transform(self, X):
        return self.vectorizer_.transform(self._docs(X))

    def get_feature_names_out(self, input_features=None):
        return np.array([f"tfidf_{t}" for t in self.vectorizer_.get_feature_names_out()], dtype=object)


class ToStrings(_StatelessColumns):
    """Categoricals as strings (missing kept as NaN) so encoders see one consistent type."""

    def fit(self, X, y=None):
        self.frame_output_ = False  # an object array: encoders check it once, not column by column
        return super().fit(X, y)

    def transform(self, X):
        # Column by column into one object array: string columns pass through as they are, and the
        # encoders that follow check one array instead of a DataFrame column by column. (A pandas
        # `where` per column made a one-row prediction of a 40-categorical table take 0.1 s; a
        # numpy str cast of every cell took 4 s on 180k rows.)
        frame = X if hasattr(X, "columns") else pd.DataFrame(X)
        strings = np.empty(frame.shape, dtype=object)
        for j, name in enumerate(frame.columns):
            column = frame[name]
            values = column.astype(str).to_numpy(dtype=object)
            missing = column.isna().to_numpy()
            if missing.any():
                values[missing] = np.nan
            strings[:, j] = values
        if getattr(self, "frame_output_", True):  # models saved before 2026-11-24 expect a DataFrame here
            return pd.DataFrame(strings, columns=list(self._input_names()), index=getattr(X, "index", None))
        return strings

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self._input_names(input_features), dtype=object)


class Categories(_StatelessColumns):
    """Categoricals -> pandas categories fixed at fit time (unseen values and missing -> NaN), for
    models that split on categories natively (XGBoost's enable_categorical): no order is imposed on
    the levels, so one split can group any of them (diamonds' cut and clarity, ames's
    neighbourhoods: 24,703 RMSE against 27,351 with alphabetical codes at the same 400 rounds)."""

    def fit(self, X, y=None):
        super().fit(X, y)
        frame = X if hasattr(X, "columns") else pd.DataFrame(X)
        # Plain lists of strings: skops stores them without trusting a pandas type.
        self.categories_ = [sorted(frame[c].dropna().astype(str).unique().tolist()) for c in frame.columns]
        return self

    def transform(self, X):
        frame = X if hasattr(X, "columns") else pd.DataFrame(X)
        columns = {}
        for name, col, levels in zip(self._input_names(), frame.columns, self.categories_):
            column = frame[col]
            # Codes, not values: pandas deprecates values outside the categories, and -1 is the
            # missing code for both unseen levels and missing cells.
            codes = pd.Index(levels, dtype=object).get_indexer(column.astype(str).to_numpy(dtype=object))
            codes[column.isna().to_numpy()] = -1
            columns[name] = pd.Categorical.from_codes(codes, categories=pd.Index(levels, dtype=object))
        return pd.DataFrame(columns, index=getattr(X, "index", None))

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self._input_names(input_features), dtype=object)


MISSING_LABEL = "__missing__"  # a missing categorical as a level of its own


def labels_filled(*then) -> Pipeline:
    """Categoricals as text labels with missing as MISSING_LABEL, then `then` (an encoder; none for
    a model that encodes labels itself: CatBoost's cat_features refuse NaN and floats)."""
    return make_pipeline(ToStrings(), SimpleImputer(strategy="constant", fill_value=MISSING_LABEL), *then)


class TargetEncoding(TargetEncoder):
    """scikit-learn's TargetEncoder, fitted the same way (cross-fitting), with a transform that maps
    categories to their encodings through one pandas hash lookup per column (the table is built in C
    from the fitted levels on each call; no Python loop over them).

    Why: TargetEncoder.transform rebuilds a Python set and dict of every known category on each call
    (sklearn.utils._encode), so a column with thousands of levels (nassCDS's `caseid`) cost ~130 ms
    per call and member, one row or a thousand: a 5-member blend predicted a single row in ~240 ms,
    and explain's many small predictions, the notebook and the latency sample all paid it.
    Fitted categories are kept as a fixed-width string array when every level is a string: skops
    stores that as one .npy entry, not one JSON node per level."""

    def fit(self, X, y):
        super().fit(X, y)
        self._compact_categories()
        return self

    def fit_transform(self, X, y):
        out = super().fit_transform(X, y)
        self._compact_categories()
        return out

    def _compact_categories(self) -> None:
        self.categories_ = [np.asarray(levels, dtype=str) if len(levels) and all(isinstance(v, str) for v in levels)
                            else levels for levels in self.categories_]

    def transform(self, X):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "encodings_")
        values = X.to_numpy(dtype=object) if hasattr(X, "columns") else np.asarray(X, dtype=object)
        if values.ndim != 2 or values.shape[1] != len(self.categories_):
            raise ValueError(f"X has {values.shape[-1]} features, but TargetEncoding is expecting "
                             f"{len(self.categories_)} features as input")
        per_feature = len(self.classes_) if self.target_type_ == "multiclass" else 1
        means = np.atleast_1d(np.asarray(self.target_mean_, dtype=np.float64))
        out = np.empty((values.shape[0], len(self.categories_) * per_feature), dtype=np.float64)
        for j, levels in enumerate(self.categories_):
            codes = pd.Index(np.asarray(levels, dtype=object)).get_indexer(values[:, j])  # -1: unseen
            unseen = codes < 0
            for k in range(per_feature):  # multiclass: one column per class, feature-major (as sklearn)
                column = j * per_feature + k
                out[:, column] = np.asarray(self.encodings_[column], dtype=np.float64)[np.where(unseen, 0, codes)]
                out[unseen, column] = means[k]
        return out


def split_columns(kinds: dict[str, str], df: pd.DataFrame | None = None) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {k: [] for k in ("numeric", "rarely_missing", "low_card", "high_card", "datetime", "text")}
    for col, kind in kinds.items():
        if kind == "numeric":
            # A missing-indicator learned from a handful of rows is noise that a model can lean on
            # hard (penguins: one all-missing training row made "missing" mean Adelie, and the test's
            # all-missing Gentoo got p=0.00001). Same threshold as one-hot's rare levels.
            missing = int(df[col].isna().sum()) if df is not None and col in df else 0
            groups["rarely_missing" if 0 < missing < RARE else "numeric"].append(col)
        elif kind in ("categorical", "boolean"):
            n_unique = df[col].nunique() if df is not None and col in df else 0
            groups["high_card" if n_unique > HIGH_CARDINALITY else "low_card"].append(col)
        elif kind == "datetime":
            groups["datetime"].append(col)
        elif kind == "text":
            groups["text"].append(col)
    return groups


def build_preprocessor(groups: dict[str, list[str]], *, linear: bool, task: str, dense: bool = False,
                       native_categorical: bool = False, sparse_text: bool | None = None,
                       text_representation: str = "tfidf", native_as: str = "categories") -> ColumnTransformer:
    """`native_categorical`: low-cardinality categoricals stay pandas categories (`native_as`
    "categories") or text labels ("labels") and the output is a DataFrame (for a model that
    handles categories itself); callers check `native_ok` first.
    `sparse_text`: text as wide sparse TF-IDF (linear models) or SVD-reduced (the rest;
    dsagent.tools.text); default: sparse for linear, reduced for dense. `text_representation`
    "embed": sentence embeddings of the text columns instead (the task's choice, tools/text_choice.py)."""
    sparse_text = (linear and not dense) if sparse_text is None else sparse_text
    target_type = shape_type(task).encoder_target_type
    parts: list[tuple[str, Any, Any]] = []
    for name, indicator in (("num", True), ("num_rare_missing", False)):
        columns = groups["numeric" if indicator else "rarely_missing"]
        if columns:
            steps = [SimpleImputer(strategy="median", add_indicator=indicator, keep_empty_features=True)]
            if linear:
                steps.append(StandardScaler())
            parts.append((name, make_pipeline(*steps), columns))
    coded = groups["numeric"] + groups["rarely_missing"]
    if linear and coded and coded_levels_on():
        parts.append(("coded", CodedLevels(), coded))
    if groups["low_card"]:
        if native_categorical:
            parts.append(("cat", labels_filled() if native_as == "labels" else Categories(), groups["low_card"]))
        elif linear:
            enc = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=RARE, sparse_output=not dense)
            parts.append(("cat", labels_filled(enc), groups["low_card"]))
        else:
            enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2)
            parts.append(("cat", make_pipeline(ToStrings(), enc), groups["low_card"]))
    if groups["high_card"]:
        # An explicit seeded splitter: since scikit-learn 1.9 an int cv shuffles with random_state=None,
        # which made the same spec score differently run to run. Cross-fitting keeps each row's own
        # target out of its encoding during fit.
        from sklearn.model_selection import KFold

        enc = TargetEncoding(target_type=target_type, cv=KFold(5, shuffle=True, random_state=0))
        parts.append(("hicat", labels_filled(enc), groups["high_card"]))
    if groups["datetime"]:
        steps = [DatetimeParts(), SimpleImputer(strategy="median", keep_empty_features=True)]
        if linear:
            steps.append(StandardScaler())
        parts.append(("dt", make_pipeline(*steps), groups["datetime"]))
    if groups["text"]:
        from dsagent.tools.text import text_transformer

        if text_representation == "embed":
            from dsagent.tools.text_embed import embedding_step
        elif text_representation != "tfidf":
            raise ValueError(f"text representation {text_representation!r}: 'tfidf' or 'embed'")
        for col in groups["text"]:
            step = embedding_step(scaled=linear) if text_representation == "embed" else text_transformer(sparse_text)
            parts.append((f"text_{col}", step, [col]))
    if native_categorical:
        return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0,
                                 verbose_feature_names_out=False).set_output(transform="pandas")
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0 if dense else 0.3, verbose_feature_names_out=False)


def native_ok(groups: dict[str, list[str]]) -> bool:
    """Whether categories can be passed natively: there are low-cardinality categoricals, no text
    column (TF-IDF is sparse, a DataFrame cannot hold it) and no column name XGBoost refuses."""
    names = [c for cols in groups.values() for c in cols]
    return bool(groups["low_card"]) and not groups["text"] and not any(ch in str(c) for c in names for ch in "[]<")


_THREADS_LIMITED = False


def limit_native_threads() -> None:
    """Cap OpenMP/BLAS pools (hist_gb and BLAS take no n_jobs) once per process, so the notebook
    that rebuilds a model runs it the same way the session did."""
    global _THREADS_LIMITED
    if not _THREADS_LIMITED:
        from threadpoolctl import threadpool_limits

        threadpool_limits(native_threads())
        _THREADS_LIMITED = True


def make_estimator(family: str, params: dict[str, Any], task: str, seed: int, n_classes: int = 2) -> Any:
    """An unfitted estimator of a registered family (dsagent.tools.families); `params` override its defaults."""
    from dsagent.tools.families import get_family

    # The task type may set parameters on the family (a quantile loss, say); the family is built
    # for the task's prediction shape (binary / multiclass / regression).
    tt = task_types().get(task)
    if tt is not None and tt.prediction:
        params, task = {**tt.family_params(family), **params}, tt.prediction
    return get_family(family).build(dict(params), task, seed, n_classes)


# Keys of a spec's params that shape the pipeline rather than the estimator.
TARGET_TRANSFORMS = {"log1p": (np.log1p, np.expm1)}
# "categorical": how a family sees low-cardinality categoricals (ModelFamily.native_categorical is
# its default). XGBoost splits on categories natively (better on 4 of the 7 suite datasets with
# categoricals, measured at fixed rounds); the forests and hist_gb get ordinal codes ("native" is
# allowed for hist_gb too); CatBoost gets ordinal codes unless DSAGENT_CATBOOST_LABELS=1 hands it
# text labels for its cat_features (ModelFamily.native_as / read_natively).


def build_pipeline(spec: dict[str, Any], kinds: dict[str, str], df: pd.DataFrame, task: str, seed: int,
                   n_classes: int = 2, derived: dict[str, Any] | None = None):
    """spec = {"family": ..., "params": {...}} -> an unfitted estimator on raw columns.

    Deterministic: the same spec, columns and seed give the same model (the notebook relies on it).
    - a single family -> Pipeline(preprocess, model); params may carry "target_transform": "log1p"
      (regression: fit on log1p(y), predict back on the original scale);
    - family "ensemble" with params {"members": [spec, ...], "weights": [...]} -> a soft
      VotingClassifier / VotingRegressor of member Pipelines (each with its own preprocessing);
      family "stack" with params {"members", "names", "coef", "intercept"} -> the member Pipelines
      combined by a level-2 linear model learned on out-of-fold predictions (tools/stacking.py).
    - `derived` (the task's "derived" entry: {"features": ["name = expr", ...], "time_column": ...})
      puts a DerivedFeatures step in front of the preprocessing (tools/derived_step.py): the features
      are computed from raw rows and fitted with the rest, per fold. Its "text" key ("tfidf" or
      "embed") is how free-text columns are represented (tools/text_choice.py decides it).
    """
    limit_native_threads()
    family = spec["family"]
    params = dict(spec.get("params") or {})
    if family == "ensemble":
        from sklearn.ensemble import VotingClassifier, VotingRegressor

        names = params.get("names") or [f"m{i}_{m['family']}" for i, m in enumerate(params["members"])]
        members = [(str(n), build_pipeline(m, kinds, df, task, seed, n_classes, derived))
                   for n, m in zip(names, params["members"])]
        weights = [float(w) for w in params["weights"]]
        if shape_type(task).regression:
            return VotingRegressor(members, weights=weights)
        return VotingClassifier(members, voting="soft", weights=weights)
    if family == "stack":  # members combined by level-2 coefficients learned out of fold (tools/stacking.py)
        from dsagent.tools.stacking import make_stack

        members = [(str(n), build_pipeline(m, kinds, df, task, seed, n_classes, derived))
                   for n, m in zip(params["names"], params["members"])]
        return make_stack(members, params, shape_type(task).regression, n_classes)
    from dsagent.tools.families import get_family, model_families

    fam = get_family(family)
    transform = params.pop("target_transform", None)
    categorical = params.pop("categorical", fam.native_categorical or "ordinal")
    if categorical not in ("ordinal", "native") or (categorical == "native" and not fam.native_categorical):
        native_families = sorted(f.name for f in model_families().values() if f.native_categorical)
        raise ValueError(f"categorical {categorical!r}: 'ordinal', or 'native' for {native_families}")
    native = False
    if derived and derived.get("features"):
        from dsagent.tools.derived import parse_feature

        # Derived features are numbers; the step keeps the raw columns, so the preprocessing below
        # selects by name as before and drops the helper columns a feature only reads.
        kinds = {**kinds, **{parse_feature(f).name: "numeric" for f in derived["features"]}}
    if family == "baseline":  # the prior / the mean reads no feature: encoding them is wasted time on large data
        pre = ColumnTransformer([], remainder="drop")
    else:
        groups = split_columns(kinds, df)
        native = categorical == "native" and native_ok(groups)
        pre = build_preprocessor(groups, linear=fam.scaled_inputs, task=task, dense=fam.dense,
                                 native_categorical=native, sparse_text=fam.sparse_text,
                                 text_representation=(derived or {}).get("text") or "tfidf", native_as=fam.native_as)
    model = make_estimator(family, params, task, seed, n_classes)
    if native and fam.read_natively is not None:
        fam.read_natively(model, list(groups["low_card"]))
    if transform:
        from sklearn.compose import TransformedTargetRegressor

        if not shape_type(task).regression or transform not in TARGET_TRANSFORMS:
            raise ValueError(f"target_transform {transform!r} needs a regression task and one of {list(TARGET_TRANSFORMS)}")
        func, inverse = TARGET_TRANSFORMS[transform]
        model = TransformedTargetRegressor(regressor=model, func=func, inverse_func=inverse, check_inverse=False)
    if derived and derived.get("features"):
        from dsagent.tools.derived_step import DerivedFeatures

        # One "preprocess" step still: the callers that fit or read it (early stopping, explain) need no change.
        pre = Pipeline([("derive", DerivedFeatures(list(derived["features"]), derived.get("time_column"))), ("columns", pre)])
    if derived and derived.get("select") and family != "baseline":
        from dsagent.tools.select_step import WideSelection

        # Wide data: columns judged useless on the rows being fitted (each fold's training rows) go first.
        sel = derived["select"]
        step = WideSelection(list(sel["columns"]), bool(sel.get("importance")), shape_type(task).regression, seed)
        pre = Pipeline([("select", step), ("columns", pre)])
    return Pipeline([("preprocess", pre), ("model", model)])


def final_estimator(model):
    """The fitted model inside a Pipeline (unwrapping a target transform), or None for ensembles."""
    if not hasattr(model, "named_steps"):
        return None
    est = model.named_steps["model"]
    return getattr(est, "regressor_", est)
