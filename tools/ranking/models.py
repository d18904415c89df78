"""The ranking candidates. Each is fitted on rows sorted by group (XGBoost and LightGBM read a
query's rows as one contiguous block) and scores rows one at a time, so predicting needs no
group: the rank within a group is taken from the scores afterwards.

- `random`: a seeded random score, the floor any model must clear;
- `single_feature`: the one numeric column (and direction) that ranks the training groups best;
- `pointwise`: an XGBoost regressor on the relevance grade, scored per row with no knowledge of
  the group (the usual first attempt);
- `xgb_ndcg` / `xgb_pairwise`: XGBoost's LambdaMART objectives with default settings;
- `xgb_ndcg_tuned`: rank:ndcg with a slower learning rate, more rounds and row/column sampling.

LightGBM's lambdarank is not a candidate: lightgbm is not a dependency, and its saved model would
need its own entries on the trusted-types list (the benchmark compares against it instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

BASELINES = ("random", "single_feature")


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
    """In the order tried. The ranking objective first: on a short budget it is the one candidate
    that must be tried; on large data the pointwise model first, as it fits about ten times faster
    (movielens, 78k training rows: 33 s against over 60 s for rank:ndcg) and so can learn from
    every training row where a ranker only affords a sample."""
    first = ["pointwise", "xgb_ndcg"] if large else ["xgb_ndcg", "pointwise"]
    return ["random", "single_feature", *first, "xgb_pairwise", "xgb_ndcg_tuned"]


# Fit time of each learned candidate relative to rank:ndcg with defaults, so that the search does not
# start one that cannot finish (movielens, 13k-row folds, one thread: pointwise 1.2 s for three folds,
# rank:ndcg 5.5 s, the tuned ranker's 400 sampled rounds ~9 s per fold; it used to be started on
# the time of the last candidate and cut off after two of three folds, 18 s of a 29 s search lost).
RELATIVE_COST = {"pointwise": 0.25, "xgb_ndcg": 1.0, "xgb_pairwise": 1.0, "xgb_ndcg_tuned": 5.0}


def _prep(categorical: list[str], numeric: list[str]):
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OrdinalEncoder

    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    return ColumnTransformer([("cat", enc, categorical), ("num", "passthrough", numeric)], remainder="drop")


def _estimator(name: str, seed: int):
    from dsagent.tools.features import native_threads

    # One thread on a 2-core machine, as every other family (features.native_threads): with two,
    # OpenMP's busy-waiting beside other processes made the fits 25-50x slower (movielens, 16k
    # rows, load 8: pointwise 8-15 s against 0.3 s, rank:ndcg 47 s against 3.1 s), and the
    # ranking run overran its budget with the final model fitted on 5k of 78k rows.
    common = {"random_state": seed, "n_jobs": native_threads(), "tree_method": "hist"}
    if name == "pointwise":
        from xgboost import XGBRegressor

        return XGBRegressor(**common)
    from xgboost import XGBRanker

    if name == "xgb_ndcg":
        return XGBRanker(objective="rank:ndcg", **common)
    if name == "xgb_pairwise":
        return XGBRanker(objective="rank:pairwise", **common)
    if name == "xgb_ndcg_tuned":
        return XGBRanker(objective="rank:ndcg", n_estimators=400, learning_rate=0.05, max_depth=6, min_child_weight=5,
                         subsample=0.8, colsample_bytree=0.8, **common)
    raise ValueError(f"unknown ranking candidate {name!r}; candidates: {', '.join(candidate_names())}")


def fit(name: str, X: pd.DataFrame, grades: np.ndarray, groups: np.ndarray, categorical: list[str],
        numeric: list[str], k: int, threshold: float, seed: int) -> Fitted:
    """Fit one candidate on training rows (any order: they are sorted by group here)."""
    if name == "random":
        return Fitted(name)
    if name == "single_feature":
        return _best_feature(X, grades, groups, numeric, k, threshold)
    from sklearn.pipeline import Pipeline

    qid = pd.factorize(pd.Series(groups).astype(str))[0]
    order = np.argsort(qid, kind="stable")
    Xs, ys, qs = X.iloc[order], np.asarray(grades)[order], qid[order]
    pipe = Pipeline([("prep", _prep(categorical, numeric)), ("model", _estimator(name, seed))])
    if name == "pointwise":
        pipe.fit(Xs, ys)
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
