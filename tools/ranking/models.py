"""The ranking candidates. Each is fitted on rows sorted by group (XGBoost and LightGBM read a
query's rows as one contiguous block) and scores rows one at a time, so predicting needs no
group: the rank within a group is taken from the scores afterwards.

- `random`: a seeded random score, the floor any model must clear;
- `single_feature`: the one numeric column (and direction) that ranks the training groups best;
- `lgbm_lambdarank` / `xgb_ndcg`: LightGBM's `LGBMRanker()` (lambdarank) and XGBoost's
  `XGBRanker(objective="rank:ndcg")` with the libraries' default settings (DEFAULTS): fitted right
  after the baselines in every run, so the search can only improve on them (the ranking twin of
  tools/defaults.py);
- `pointwise`: an XGBoost regressor on the relevance grade, scored per row with no knowledge of
  the group (the usual first attempt);
- `xgb_pairwise`: XGBoost's rank:pairwise with defaults;
- `lgbm_tuned` / `xgb_ndcg_tuned`: the same rankers with Optuna's best settings (tools/ranking/tune.py);
  their parameters travel with the leaderboard row, into the final fit and the notebook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BASELINES = ("random", "single_feature")
DEFAULTS = ("lgbm_lambdarank", "xgb_ndcg")  # the libraries' default rankers; the cheaper one first
TUNED = {"lightgbm": "lgbm_tuned", "xgboost": "xgb_ndcg_tuned"}  # Optuna-tuned ranker of each family
FAMILY = {"lgbm_lambdarank": "lightgbm", "lgbm_tuned": "lightgbm", "xgb_ndcg": "xgboost", "xgb_ndcg_tuned": "xgboost",
          "xgb_pairwise": "xgboost", "pointwise": "xgboost"}


@dataclass
class Fitted:
    """A fitted candidate as the saved model holds it: a Pipeline, or a column and its sign."""

    name: str
    pipeline: Any = None
    feature: str | None = None
    sign: float = 1.0

    def score(self, X: pd.DataFrame, seed: int = 0) -> np.ndarray:
        if self.pipeline is not None:
            return np.asarray(self.pipeline.predict(X), dtype=float)
        if self.feature is not None:
            v = pd.to_numeric(X[self.feature], errors="coerce").to_numpy(dtype=float) * self.sign
            return np.nan_to_num(v, nan=-np.inf)  # a missing value ranks last
        return np.random.default_rng(seed).random(len(X))

    def as_dict(self) -> dict[str, Any]:
        return {"kind": "dsagent-ranking", "name": self.name, "pipeline": self.pipeline, "feature": self.feature,
                "sign": self.sign}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Fitted":
        return cls(d["name"], d.get("pipeline"), d.get("feature"), float(d.get("sign", 1.0)))


def candidate_names(large: bool = False) -> list[str]:
    """The fixed candidates tried before tuning (tools/ranking/tune.py), in order. The default rankers
    come first after the baselines: they are the floor the search must clear."""
    return ["random", "single_feature", *DEFAULTS, "pointwise"]


def late_names(large: bool = False) -> list[str]:
    """The fixed candidates tried after tuning, with the time it leaves (tuning keeps their projected
    time). rank:pairwise was never the best learned candidate on the benchmark sets; on large data it
    is left out, as it costs as much as rank:ndcg."""
    return [] if large else ["xgb_pairwise"]


# Fit time of each fixed candidate relative to rank:ndcg with defaults, so that the search does not
# start one that cannot finish (movielens, 13k-row folds, one thread: pointwise 1.2 s for three folds,
# rank:ndcg 5.5 s; it used to be started on the time of the last candidate and cut off after two of
# three folds, 18 s of a 29 s search lost). LightGBM's lambdarank with defaults took 0.7-0.8x
# rank:ndcg's time on movielens (three runs at load 8-12) and 0.5-0.7x on the small sets.
RELATIVE_COST = {"pointwise": 0.25, "xgb_ndcg": 1.0, "xgb_pairwise": 1.0, "lgbm_lambdarank": 0.75}


LGBM_MAX_GROUP_ROWS = 10_000  # LightGBM's lambdarank refuses a query of more rows ("exceeds upper limit of 10000")


def cannot_fit(name: str, groups: np.ndarray) -> str | None:
    """Why `name` cannot be fitted on these groups, or None."""
    if FAMILY.get(name) == "lightgbm" and name != "pointwise":
        largest = int(pd.Series(groups).value_counts().max())
        if largest > LGBM_MAX_GROUP_ROWS:
            return f"a group has {largest:,} rows; LightGBM's lambdarank takes at most {LGBM_MAX_GROUP_ROWS:,} per group"
    return None


def _prep(categorical: list[str], numeric: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    return ColumnTransformer([("cat", enc, categorical), ("num", "passthrough", numeric)], remainder="drop")


def _estimator(name: str, seed: int, params: dict[str, Any] | None = None):
    from dsagent.tools.features import native_threads

    # One thread on a 2-core machine, as every other family (features.native_threads): with two,
    # OpenMP's busy-waiting beside other processes made the fits 25-50x slower (movielens, 16k
    # rows, load 8: pointwise 8-15 s against 0.3 s, rank:ndcg 47 s against 3.1 s), and the
    # ranking run overran its budget with the final model fitted on 5k of 78k rows.
    common = {"random_state": seed, "n_jobs": native_threads()}
    params = dict(params or {})
    if FAMILY.get(name) == "lightgbm":
        from lightgbm import LGBMRanker

        return LGBMRanker(**common, verbose=-1, **params)  # lambdarank is LGBMRanker's default objective
    common["tree_method"] = "hist"
    if name == "pointwise":
        from xgboost import XGBRegressor

        return XGBRegressor(**common)
    from xgboost import XGBRanker

    if name in ("xgb_ndcg", "xgb_ndcg_tuned"):
        return XGBRanker(objective="rank:ndcg", **common, **params)
    if name == "xgb_pairwise":
        return XGBRanker(objective="rank:pairwise", **common)
    raise ValueError(f"unknown ranking candidate {name!r}; candidates: {', '.join(candidate_names() + list(TUNED.values()))}")


def fit(name: str, X: pd.DataFrame, grades: np.ndarray, groups: np.ndarray, categorical: list[str],
        numeric: list[str], k: int, threshold: float, seed: int, params: dict[str, Any] | None = None) -> Fitted:
    """Fit one candidate on training rows (any order: they are sorted by group here); `params` are a
    tuned ranker's settings."""
    if name == "random":
        return Fitted(name)
    if name == "single_feature":
        return _best_feature(X, grades, groups, numeric, k, threshold)
    from sklearn.pipeline import Pipeline

    qid = pd.factorize(pd.Series(groups).astype(str))[0]
    order = np.argsort(qid, kind="stable")
    Xs, ys, qs = X.iloc[order], np.asarray(grades)[order], qid[order]
    pipe = Pipeline([("prep", _prep(categorical, numeric)), ("model", _estimator(name, seed, params))])
    if name == "pointwise":
        pipe.fit(Xs, ys)
    elif FAMILY.get(name) == "lightgbm":
        # LightGBM takes the size of each contiguous group (in the sorted order) and integer grades
        # (lambdarank's gain table is indexed by them; grades_of keeps them whole numbers up to 31).
        sizes = np.unique(qs, return_counts=True)[1]
        top = int(ys.max())
        if top >= 31:  # the default gain table (2^grade - 1) stops at grade 30; grades_of allows 31
            pipe.set_params(model__label_gain=[2.0 ** i - 1 for i in range(top + 1)])
        pipe.fit(Xs, ys.astype(int), model__group=sizes)
    else:
        pipe.fit(Xs, ys, model__qid=qs)
    return Fitted(name, pipeline=pipe)


def _best_feature(X, grades, groups, numeric, k, threshold) -> Fitted:
    """The numeric column, in the direction, with the best mean NDCG@k over the training groups."""
    from dsagent.tools.ranking.metrics import score_groups

    best, best_ndcg = Fitted("single_feature"), -1.0
    for col in numeric:
        v = pd.to_numeric(X[col], errors="coerce").to_numpy(dtype=float)
        for sign in (1.0, -1.0):
            s = np.nan_to_num(v * sign, nan=-np.inf)
            ndcg = score_groups(grades, s, groups, k, threshold)["ndcg"]
            if ndcg > best_ndcg + 1e-12:
                best, best_ndcg = Fitted("single_feature", feature=col, sign=sign), ndcg
    return best


def importances(fitted: Fitted, top: int = 15) -> list[dict[str, Any]]:
    """Gain importances of a tree model (names from the preprocessing), largest first."""
    if fitted.pipeline is None:
        return [{"feature": fitted.feature, "importance": 1.0}] if fitted.feature else []
    model = fitted.pipeline.named_steps["model"]
    names = [n.split("__", 1)[-1] for n in fitted.pipeline.named_steps["prep"].get_feature_names_out()]
    values = np.asarray(getattr(model, "feature_importances_", np.zeros(len(names))), dtype=float)
    order = np.argsort(-values)[:top]
    return [{"feature": names[i], "importance": round(float(values[i]), 4)} for i in order if values[i] > 0]
