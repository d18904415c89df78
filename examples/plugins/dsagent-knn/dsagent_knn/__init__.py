"""A k-nearest-neighbours model family for dsagent, shipped as a plugin package.

Installed, `knn` becomes one more candidate of train_models (binary, multiclass and regression),
tunable by tune_model, priced by the refit estimate and rebuilt by the notebook, with no edit to
dsagent. Import ML libraries inside `build`: dsagent reads the registry in processes that
never fit a model.
"""

from __future__ import annotations

from typing import Any

from dsagent.tools.families import ModelFamily


def build(params: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = KNeighborsRegressor if task == "regression" else KNeighborsClassifier
    return cls(**({"n_neighbors": 15, "weights": "distance"} | params))


def search_space(trial, task: str) -> dict[str, Any]:
    return {"n_neighbors": trial.suggest_int("n_neighbors", 3, 50, log=True),
            "weights": trial.suggest_categorical("weights", ["uniform", "distance"])}


# scaled_inputs: distances need standardised numbers and one-hot categories, as linear models do.
# cheap: a fit only stores the rows, so it is tried right after the baseline.
KNN = ModelFamily("knn", build, search_space=search_space, warm_starts=({"n_neighbors": 15, "weights": "distance"},),
                  scaled_inputs=True, cheap=True)
