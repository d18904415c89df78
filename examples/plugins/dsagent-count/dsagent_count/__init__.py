"""A `count` task type and a `poisson_glm` model family for dsagent, shipped as a plugin package.

Counts (visits, claims, defects per row) are a regression whose target is a non-negative integer
and whose noise grows with the mean. Installed, `dsagent run DATA --task count` validates the
target as such counts, scores candidates by mean Poisson deviance (squared error over-weights the
large counts), and keeps to candidates whose predictions cannot go below zero: a Poisson GLM (this
package's family, log link), XGBoost and histogram boosting with Poisson losses, and forests
(averages of non-negative targets). The linear Ridge model, which can predict negative counts, is
left out rather than clipped afterwards: a clipped model's cross-validation score would not be the
score of the model that ships.

Everything else (cross-validation, tuning, ensembles, evaluation, report, notebook, monitoring,
predict) is dsagent's regression pipeline: `prediction = "regression"`. Import ML libraries inside
functions: dsagent reads the registries in processes that never fit a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dsagent.tools.families import ModelFamily
from dsagent.tools.task_types import TargetInfo, TaskType

# Built-in families whose predictions stay >= 0 on a non-negative target (with the params below).
NON_NEGATIVE = ("baseline", "xgboost", "hist_gb", "random_forest", "extra_trees")
POISSON_PARAMS = {"xgboost": {"objective": "count:poisson"}, "hist_gb": {"loss": "poisson"}}


def _poisson_deviance(y, pred) -> float:
    import numpy as np
    from sklearn.metrics import mean_poisson_deviance

    # An ensemble weight of zero or a leaf at exactly 0 predicts 0, where the deviance is undefined.
    return float(mean_poisson_deviance(y, np.clip(pred, 1e-9, None)))


@dataclass(frozen=True)
class CountTask(TaskType):
    def check_target(self, y, target: str, positive_class: str | None = None) -> TargetInfo:
        import numpy as np
        import pandas as pd

        from dsagent.tools.registry import ToolError

        if not pd.api.types.is_numeric_dtype(y):
            raise ToolError(f"target {target!r} is not numeric; a count task needs whole numbers >= 0")
        values = y.dropna().to_numpy(dtype=float)
        if (values < 0).any() or not np.all(np.mod(values, 1) == 0):
            raise ToolError(f"target {target!r} has negative or fractional values; use task=regression for those")
        return TargetInfo()

    def default_metric(self, minority_frac: float | None) -> str:
        return "poisson_deviance"

    def metrics(self) -> dict[str, Any]:
        from dsagent.tools.metrics import METRICS, Metric

        regression = {n: m for n, m in METRICS.items() if "regression" in m.tasks}
        return {"poisson_deviance": Metric("poisson_deviance", False, False, _poisson_deviance, ("count",),
                                           "mean Poisson deviance"), **regression}

    def supports(self, family) -> bool:
        return family.name in NON_NEGATIVE or self.name in family.tasks

    def family_params(self, family: str) -> dict[str, Any]:
        return POISSON_PARAMS.get(family, {})

    # The sections of the report, model card and monitoring are the regression ones; this one says more.
    def model_output(self, task: dict[str, Any]) -> str:
        return ("the expected count per row (a rate, not a whole number; never below zero), from which "
                "Poisson probabilities of each count follow.")


COUNT = CountTask("count", "a non-negative whole number per row (visits, claims): Poisson deviance, predictions >= 0",
                  "regression")


def _glm(params: dict[str, Any], task: str, seed: int, n_classes: int) -> Any:
    from sklearn.linear_model import PoissonRegressor

    return PoissonRegressor(**({"alpha": 1e-3, "max_iter": 300} | params))


def _glm_space(trial, task: str) -> dict[str, Any]:
    return {"alpha": trial.suggest_float("alpha", 1e-5, 10.0, log=True)}


# scaled_inputs: a GLM needs standardised numbers and one-hot categories, as the linear family does.
POISSON_GLM = ModelFamily("poisson_glm", _glm, tasks=frozenset({"count"}), search_space=_glm_space,
                          warm_starts=({"alpha": 1e-3},), scaled_inputs=True, cheap=True)
