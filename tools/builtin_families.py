"""The built-in model families, registered through the `dsagent.model_families` entry points in
pyproject.toml like any plugin. ML libraries are imported inside the builders: reading the
registry (the autopilot does, in the agent process) imports none of them."""

from __future__ import annotations

from typing import Any

from dsagent.tools.families import CLASSIFICATION, ModelFamily
from dsagent.tools.opt_in import catboost_labels_on


def _threads() -> int:
    from dsagent.tools.features import native_threads

    return native_threads()


def _baseline(p: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    # params override the strategy: a task type may ask for another (a quantile, say)
    return DummyClassifier(**{"strategy": "prior"} | p) if task != "regression" else DummyRegressor(**{"strategy": "mean"} | p)


def _linear(p: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
    from sklearn.linear_model import LogisticRegression, Ridge

    if task != "regression":
        return LogisticRegression(**({"C": 1.0, "max_iter": 1000, "class_weight": None} | p))
    return Ridge(**({"alpha": 1.0} | p))


def _linear_space(trial, task: str) -> dict[str, Any]:
    # A narrow range: on small data an extreme C wins CV log-loss by luck and loses on test.
    key = "C" if task != "regression" else "alpha"
    return {key: trial.suggest_float(key, 1e-2, 1e2, log=True)}


def _mlp(p: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
    from sklearn.neural_network import MLPClassifier

    if task == "regression":  # an unscaled regression target trains poorly; no candidate asks for it
        raise ValueError("family 'mlp' is for classification tasks")
    # One wide hidden layer, L2-regularised, on scaled/one-hot inputs: on digits its CV log-loss
    # is 0.078 against 0.112 for logistic regression, in about a second per fit. At most 100
    # epochs: 300 took 5 s per fold on telco_churn's 2.8k rows and overfitted (AUC 0.79 vs 0.83).
    # (scikit-learn's early_stopping watches accuracy and stopped digits at log-loss 0.30.)
    return MLPClassifier(**({"hidden_layer_sizes": (256,), "alpha": 0.1, "learning_rate_init": 1e-3,
                             "max_iter": 100, "random_state": seed} | p))


def _mlp_space(trial, task: str) -> dict[str, Any]:
    return {"alpha": trial.suggest_float("alpha", 1e-4, 10.0, log=True),
            "learning_rate_init": trial.suggest_float("learning_rate_init", 3e-4, 1e-2, log=True)}


def _forest(name: str):
    def build(p: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor

        clf = task != "regression"
        cls = {("random_forest", True): RandomForestClassifier, ("random_forest", False): RandomForestRegressor,
               ("extra_trees", True): ExtraTreesClassifier, ("extra_trees", False): ExtraTreesRegressor}[(name, clf)]
        # 150 trees: nearly all of the forest's accuracy, half the fit, prediction and save time of 300
        # (a 600-tree blend took 30 s to save with skops and 0.5 s per single-row prediction).
        defaults = {"n_estimators": 150, "min_samples_leaf": 1, "max_features": "sqrt" if clf else 1.0,
                    "n_jobs": _threads(), "random_state": seed}
        return cls(**(defaults | p))

    return build


def _forest_space(trial, task: str) -> dict[str, Any]:
    return {"min_samples_leaf": trial.suggest_int("min_samples_leaf", 1, 20, log=True),
            "max_features": trial.suggest_float("max_features", 0.1, 1.0)}


def _hist_gb(p: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingClassifier if task != "regression" else HistGradientBoostingRegressor
    return cls(**({"max_iter": 300, "learning_rate": 0.06, "early_stopping": "auto", "random_state": seed} | p))


def _hist_gb_space(trial, task: str) -> dict[str, Any]:
    return {"learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 128, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 2, 100, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-8, 10, log=True),
            "max_iter": trial.suggest_int("max_iter", 100, 800, step=50)}


def _xgboost(p: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
    import xgboost as xgb

    defaults = {"n_estimators": 400, "learning_rate": 0.05, "max_depth": 6, "subsample": 0.9, "colsample_bytree": 0.8,
                "min_child_weight": 1.0, "tree_method": "hist", "max_bin": 256, "n_jobs": _threads(),
                "random_state": seed}
    if task != "regression":
        defaults["eval_metric"] = "logloss" if n_classes <= 2 else "mlogloss"
        return xgb.XGBClassifier(**(defaults | p))
    defaults["eval_metric"] = "rmse"
    return xgb.XGBRegressor(**(defaults | p))


def _xgboost_space(trial, task: str) -> dict[str, Any]:
    # The number of rounds is not searched: each fold early-stops (dsagent.tools.cv.fit_fold).
    return {"learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "max_depth": trial.suggest_int("max_depth", 2, 10),
            "min_child_weight": trial.suggest_float("min_child_weight", 0.5, 20, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30, log=True),
            "reg_alpha": trial.suggest_float("reg_alpha", 1e-8, 5, log=True)}


def _lightgbm(p: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
    import lightgbm as lgb

    # Leaf-wise growth with row and column subsampling: the fast booster on large data.
    defaults = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20,
                "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "reg_lambda": 1.0,
                "n_jobs": _threads(), "random_state": seed, "verbose": -1}
    return (lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier)(**(defaults | p))


def _lightgbm_space(trial, task: str) -> dict[str, Any]:
    return {"learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 5, 100, log=True),
            "subsample": trial.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
            "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 30, log=True),
            "n_estimators": trial.suggest_int("n_estimators", 100, 800, step=50)}


def _catboost(p: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
    from catboost import CatBoostClassifier, CatBoostRegressor

    # Symmetric trees with ordered boosting: strong on small data. It writes a catboost_info/
    # folder into the working directory unless told not to.
    defaults = {"iterations": 300, "learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0, "thread_count": _threads(),
                "random_seed": seed, "verbose": False, "allow_writing_files": False}
    return (CatBoostRegressor if task == "regression" else CatBoostClassifier)(**(defaults | p))


def _xgboost_reads_categories(model, columns: list[str]) -> None:
    model.set_params(enable_categorical=True)


# CatBoost's own handling of categoricals (ordered target statistics and their combinations) is
# why it is a candidate: on the 14 development datasets with categoricals its 5-fold CV was better
# with cat_features than with ordinal codes on 13 (attrition 0.790 -> 0.800 ROC-AUC, ames 23,158 ->
# 22,681 RMSE). Combinations cost time with many columns (car_choice, 12: 8.5 s -> 52 s for the
# five folds), so past COMBINED_CATEGORICALS columns it uses single columns only (30 s there).
COMBINED_CATEGORICALS = 8
NATIVE_CATBOOST = "native" if catboost_labels_on() else "ordinal"


def _catboost_reads_labels(model, columns: list[str]) -> None:
    # A tuple: scikit-learn's clone (the blend's VotingClassifier) checks that get_params returns the
    # very object given, and CatBoost copies a list.
    model.set_params(cat_features=tuple(columns))
    if len(columns) > COMBINED_CATEGORICALS and model.get_params().get("max_ctr_complexity") is None:
        model.set_params(max_ctr_complexity=1)


def _catboost_space(trial, task: str) -> dict[str, Any]:
    return {"learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
            "depth": trial.suggest_int("depth", 4, 8),
            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 30.0, log=True),
            "iterations": trial.suggest_int("iterations", 200, 800, step=100)}


# Warm starts (enqueued before TPE samples): library defaults plus configurations that do well
# across many tabular datasets.
BASELINE = ModelFamily("baseline", _baseline)
LINEAR = ModelFamily("linear", _linear, search_space=_linear_space, warm_starts=({"C": 1.0},), scaled_inputs=True,
                     sparse_text=True)
XGBOOST = ModelFamily("xgboost", _xgboost, search_space=_xgboost_space, native_categorical="native",
                      read_natively=_xgboost_reads_categories, rows_exponent=0.9,
                      warm_starts=(
                          {"learning_rate": 0.05, "max_depth": 6, "min_child_weight": 1.0, "subsample": 0.9,
                           "colsample_bytree": 0.8, "reg_lambda": 1.0, "reg_alpha": 1e-8},
                          {"learning_rate": 0.08, "max_depth": 4, "min_child_weight": 2.0, "subsample": 0.8,
                           "colsample_bytree": 0.6, "reg_lambda": 3.0, "reg_alpha": 1e-8},
                          {"learning_rate": 0.05, "max_depth": 8, "min_child_weight": 3.0, "subsample": 0.7,
                           "colsample_bytree": 0.5, "reg_lambda": 1.0, "reg_alpha": 0.1}))
EXTRA_TREES = ModelFamily("extra_trees", _forest("extra_trees"), search_space=_forest_space,
                          warm_starts=({"min_samples_leaf": 1, "max_features": 0.5},))
RANDOM_FOREST = ModelFamily("random_forest", _forest("random_forest"), search_space=_forest_space,
                            warm_starts=({"min_samples_leaf": 1, "max_features": 0.5},))
HIST_GB = ModelFamily("hist_gb", _hist_gb, search_space=_hist_gb_space, dense=True, native_categorical="ordinal",
                      rows_exponent=0.9, warm_starts=({"learning_rate": 0.06, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                                                       "l2_regularization": 1e-6, "max_iter": 300},))
# A converged MLP's epochs fall as rows grow (fertility: 48 epochs on 16k rows, 27 on 128k; its fit
# 0.7 s on 4k rows, 8.5 s on 128k: exponent 0.73); one that runs all 100 epochs stays linear
# (tv16 0.95, happiness 1.02), so the folds' convergence picks the exponent.
MLP = ModelFamily("mlp", _mlp, tasks=CLASSIFICATION, search_space=_mlp_space, scaled_inputs=True,
                  converged_rows_exponent=0.7,
                  warm_starts=({"alpha": 0.1, "learning_rate_init": 1e-3}, {"alpha": 1.0, "learning_rate_init": 1e-3}))

# Optional libraries (issue 18): a family whose library does not import is skipped with a notice
# (dsagent.tools.families.unavailable). Both take ordinal codes for categoricals and a dense matrix.
LIGHTGBM = ModelFamily("lightgbm", _lightgbm, search_space=_lightgbm_space, requires=("lightgbm",), dense=True,
                       rows_exponent=0.9, warm_starts=({"learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20,
                                                        "subsample": 0.8, "colsample_bytree": 0.8, "reg_lambda": 1.0,
                                                        "n_estimators": 300},))
CATBOOST = ModelFamily("catboost", _catboost, search_space=_catboost_space, requires=("catboost",), dense=True,
                       native_categorical=NATIVE_CATBOOST, native_as="labels", read_natively=_catboost_reads_labels,
                       rows_exponent=0.9, warm_starts=({"learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0,
                                                        "iterations": 300},))

# Registry order = the default candidates' order (train_models' DEFAULT_CANDIDATES before, mlp last).
FAMILIES = [BASELINE, LINEAR, XGBOOST, EXTRA_TREES, RANDOM_FOREST, HIST_GB, MLP, LIGHTGBM, CATBOOST]
