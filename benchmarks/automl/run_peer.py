"""Fit one peer system on a prepared split and write its test predictions.

Runs inside the peer's own virtual environment (benchmarks/work/venv-<peer>), started by bench.py
with its own HOME, TMPDIR and working directory:
    python run_peer.py --system flaml|autogluon|xgboost|hgb --data DIR --budget 60 --out preds.csv
Output: proba_<class> columns (classification, classes as in meta.json) or `prediction`.
Only this environment's libraries are imported.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = {  # the suite's scoring, in each system's vocabulary
    "flaml": {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"},
    "autogluon": {"binary": "roc_auc", "multiclass": "log_loss", "regression": "root_mean_squared_error"},
}


def load(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    meta = json.loads((data / "meta.json").read_text())
    train, test = pd.read_csv(data / "train.csv"), pd.read_csv(data / "test.csv")
    if meta["task"] != "regression":
        for df in (train, test):
            df[meta["target"]] = df[meta["target"]].astype(str)
    return train, test, meta


def run_flaml(train, X_test, meta, budget):
    from flaml import AutoML

    target, task = meta["target"], meta["task"]
    automl = AutoML()
    automl.fit(X_train=train.drop(columns=[target]), y_train=train[target],
               task="regression" if task == "regression" else "classification",
               metric=METRICS["flaml"][task], time_budget=budget, seed=0, verbose=0)
    if task == "regression":
        return automl.predict(X_test), None, {"best": automl.best_estimator}
    return None, pd.DataFrame(automl.predict_proba(X_test), columns=[str(c) for c in automl.classes_]), \
        {"best": automl.best_estimator}


def run_autogluon(train, X_test, meta, budget):
    from autogluon.tabular import TabularPredictor

    target, task = meta["target"], meta["task"]
    predictor = TabularPredictor(label=target, eval_metric=METRICS["autogluon"][task], path=str(Path.cwd() / "ag_models"),
                                 verbosity=0, problem_type=task)
    predictor.fit(train, time_limit=budget)  # default presets (medium_quality)
    info = {"best": predictor.model_best}
    if task == "regression":
        return predictor.predict(X_test).to_numpy(), None, info
    proba = predictor.predict_proba(X_test)
    proba.columns = [str(c) for c in proba.columns]
    return None, proba, info


def as_categories(X: pd.DataFrame, Xt: pd.DataFrame, max_levels: int | None = None):
    """Text columns as pandas categories (the training rows' levels) for a model that splits on
    them natively; a column with more than `max_levels` levels becomes ordinal codes instead."""
    X, Xt = X.copy(), Xt.copy()
    for col in X.columns:
        if not pd.api.types.is_numeric_dtype(X[col]):
            # Plain str levels and NaN for missing: pandas' "string" dtype carries pd.NA, which
            # scikit-learn's HGB encoder refuses beside strings (census_kdd: "Got ['NAType', 'str']").
            def text(s: pd.Series) -> pd.Series:
                return s.map(lambda v: str(v) if pd.notna(v) else np.nan)

            cats = pd.Categorical(text(X[col]).dropna()).categories
            X[col] = pd.Categorical(text(X[col]), categories=cats)
            Xt[col] = pd.Categorical(text(Xt[col]), categories=cats)
            if max_levels is not None and len(cats) > max_levels:
                X[col], Xt[col] = X[col].cat.codes.astype(float), Xt[col].cat.codes.astype(float)
    return X, Xt


def run_xgboost(train, X_test, meta, budget):
    """Plain XGBoost defaults: the floor. Text columns become pandas categories (native support)."""
    import xgboost as xgb

    target, task = meta["target"], meta["task"]
    X, Xt = as_categories(train.drop(columns=[target]), X_test)
    if task == "regression":
        model = xgb.XGBRegressor(enable_categorical=True, tree_method="hist").fit(X, train[target])
        return model.predict(Xt), None, {}
    classes = meta["classes"]
    y = train[target].map({c: i for i, c in enumerate(classes)}).to_numpy()
    model = xgb.XGBClassifier(enable_categorical=True, tree_method="hist").fit(X, y)
    return None, pd.DataFrame(model.predict_proba(Xt), columns=classes), {}


def run_hgb(train, X_test, meta, budget):
    """scikit-learn's HistGradientBoosting with library defaults: the other floor. Text columns
    become pandas categories, which it splits on natively (categorical_features="from_dtype");
    beyond 255 levels it cannot, so those become ordinal codes."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    target, task = meta["target"], meta["task"]
    X, Xt = as_categories(train.drop(columns=[target]), X_test, max_levels=255)
    if task == "regression":
        return HistGradientBoostingRegressor(random_state=0).fit(X, train[target]).predict(Xt), None, {}
    classes = meta["classes"]
    y = train[target].map({c: i for i, c in enumerate(classes)}).to_numpy()
    model = HistGradientBoostingClassifier(random_state=0).fit(X, y)
    proba = np.zeros((len(Xt), len(classes)))
    proba[:, model.classes_] = model.predict_proba(Xt)
    return None, pd.DataFrame(proba, columns=classes), {}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", required=True, choices=["flaml", "autogluon", "xgboost", "hgb"])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--budget", type=float, default=60)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    started = time.time()
    train, test, meta = load(args.data)
    X_test = test.drop(columns=[meta["target"]])
    fn = {"flaml": run_flaml, "autogluon": run_autogluon, "xgboost": run_xgboost, "hgb": run_hgb}[args.system]
    fit_started = time.time()
    pred, proba, info = fn(train, X_test, meta, args.budget)
    fit_s = time.time() - fit_started
    if proba is not None:
        out = pd.DataFrame({f"proba_{c}": proba[c].to_numpy() if c in proba.columns else np.zeros(len(test))
                            for c in meta["classes"]})
    else:
        out = pd.DataFrame({"prediction": np.asarray(pred, dtype=float)})
    out.to_csv(args.out, index=False)
    info.update({"fit_predict_s": round(fit_s, 2), "process_s": round(time.time() - started, 2), "pid": os.getpid()})
    print(json.dumps(info, default=str))


if __name__ == "__main__":
    main()
