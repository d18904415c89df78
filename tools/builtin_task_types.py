"""The built-in task types, registered through the `dsagent.task_types` entry points in
pyproject.toml exactly as a plugin's would be (tools/task_types.py).

Binary, multiclass and regression run the supervised workflow through the core pipeline;
clustering and anomaly fit their own models (tools/unsupervised) and keep a shorter workflow.
Nothing here imports an ML library at module level: the agent process reads the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dsagent.tools.task_types import DELIVERABLE_STEPS, TaskType

@dataclass(frozen=True)
class BinaryTask(TaskType):
    def candidate_variants(self, spec, y) -> dict[str, dict[str, Any]]:
        """Class weights when the target is imbalanced (judged by CV like the rest)."""
        if (spec.get("minority_frac") or 0.5) >= 0.2 or spec["metric"] == "log_loss":
            return {}
        pos = max(int((y == 1).sum()), 1)
        return {"linear_balanced": {"family": "linear", "params": {"class_weight": "balanced"}},
                "xgboost_balanced": {"family": "xgboost", "params": {"scale_pos_weight": round((len(y) - pos) / pos, 4)}}}


@dataclass(frozen=True)
class RegressionTask(TaskType):
    def candidate_variants(self, spec, y) -> dict[str, dict[str, Any]]:
        """A log1p target when a non-negative target is skewed (scored on the original scale)."""
        import numpy as np
        import pandas as pd

        if not len(y) or float(np.min(y)) < 0 or float(pd.Series(y).skew()) <= 1.0:
            return {}
        return {"linear_log": {"family": "linear", "params": {"target_transform": "log1p"}},
                "xgboost_log": {"family": "xgboost", "params": {"target_transform": "log1p"}}}


@dataclass(frozen=True)
class UnsupervisedTask(TaskType):
    """Work without a target: its task object (tools/unsupervised) fits, predicts, reports."""

    def fitted_class(self):
        from dsagent.tools.unsupervised import task_class

        return task_class(self.name)

    def write_report(self, ctx, record: dict[str, Any]):
        from dsagent.tools.unsupervised.report import write

        return write(ctx, record)

    def build_notebook(self, ctx, session: dict[str, Any], record: dict[str, Any]):
        from dsagent.tools.unsupervised.notebook import build_notebook

        return build_notebook(ctx, session, record)

    def write_monitoring_plan(self, ctx, record: dict[str, Any], retrain_every_days: int):
        from dsagent.tools.unsupervised.monitoring import write_plan

        return write_plan(ctx, record, retrain_every_days)

    def apply_monitoring(self, plan: dict[str, Any], model, manifest: dict[str, Any], data) -> dict[str, Any]:
        from dsagent.tools.unsupervised.monitoring import apply

        return apply(plan, model, manifest, data)


@dataclass(frozen=True)
class ClusteringType(UnsupervisedTask):
    def summary(self, rec: dict[str, Any]) -> str:
        names = "; ".join(f"{s['segment']}: {s['name']} ({s['share']:.0%})" for s in rec.get("segments", [])[:8])
        return (f"Done. {rec['k']} segments by {rec['method']} (silhouette {rec['chosen']['silhouette']:.3f}, "
                f"bootstrap stability ARI {rec['chosen']['stability']:.2f}): {names}.")


@dataclass(frozen=True)
class AnomalyType(UnsupervisedTask):
    def summary(self, rec: dict[str, Any]) -> str:
        ev = rec.get("evaluation") or {}
        scored = (f" On {ev['rows']} held-out labelled rows: average precision {ev['average_precision']:.3f}, ROC-AUC "
                  f"{ev['roc_auc']:.3f}." if "average_precision" in ev else "")
        return (f"Done. {rec['method']} flags {rec['flagged']} of {rec['n_rows']} rows "
                f"(threshold at an expected rate of {rec['expected_anomaly_rate']:.1%}, {rec['rate_source']}).{scored}")

    def predict_columns(self, classes: list[str] | None) -> list[str]:
        return ["anomaly_score", "is_anomaly"]


_PROFILE = "First I profile the data: column types, missing values, and columns that only identify rows."

BINARY = BinaryTask("binary", "two classes: probabilities of the positive class, a decision threshold", "binary")
MULTICLASS = TaskType("multiclass", "three or more classes: a probability per class", "multiclass")
REGRESSION = RegressionTask("regression", "a number per row", "regression")
CLUSTERING = ClusteringType(
    "clustering", "segments of similar rows, no target", None,
    steps=("profile_data", "find_segments", *DELIVERABLE_STEPS),
    step_text={"profile_data": _PROFILE,
               "find_segments": ("Comparing KMeans, Gaussian mixtures, agglomerative clustering and HDBSCAN, choosing the "
                                 "number of segments by silhouette, Calinski-Harabasz, bootstrap stability and the gap statistic.")},
    goal_words=("segment", "group", "cluster", "persona", "cohort"),
    assumptions={"n_segments": "n_segments = [2, 8]: the range of segment counts considered (not given)"})
ANOMALY = AnomalyType(
    "anomaly", "unusual rows flagged by a score and a threshold, no target", None,
    steps=("profile_data", "detect_anomalies", *DELIVERABLE_STEPS),
    step_text={"profile_data": _PROFILE,
               "detect_anomalies": ("Comparing IsolationForest, LocalOutlierFactor, robust covariance and a robust z-score "
                                    "baseline, chosen without labels; a known-anomaly label, if any, only evaluates.")},
    goal_words=("unusual", "outlier", "anomal", "fraud", "abnormal", "suspicious", "odd ", "rare event"),
    assumptions={"expected_anomaly_rate": "expected_anomaly_rate estimated from the score distribution (not given)"})



class ForecastType(TaskType):
    """Forecasting fits its own models (tools/forecast: rolling-origin backtests, conformal
    intervals) on a target over time. The autopilot walks its steps like any task's, passing them
    the target; predict asks the model's task type (predict_file)."""

    no_result = "The run ended without an evaluated forecast."
    closing_note = "See report.md, model_card.md and notebook.ipynb; forecast with `dsagent predict SESSION`."

    @property
    def needs_target(self) -> bool:
        return True

    def critical_steps(self) -> frozenset[str]:
        return frozenset(("define_forecast", "backtest_forecast", "evaluate_forecast"))

    def step_args(self, step: str, target: str | None) -> dict[str, Any]:
        return {"target": target} if step in ("profile_data", "define_forecast") and target else {}

    def summary_record(self, artifacts_dir, record_of) -> dict[str, Any] | None:
        return record_of("evaluate_forecast") or None

    def summary(self, ev: dict[str, Any]) -> str:
        return (f"Done. The chosen forecaster is {ev.get('model')}: test MASE {ev.get('test_score', float('nan')):.3f} vs "
                f"the seasonal naive's {ev.get('baseline_score', float('nan')):.3f}.")

    def predict_columns(self, classes: list[str] | None) -> list[str]:
        return ["prediction", "lower_80", "upper_80", "lower_95", "upper_95"]

    def apply_monitoring(self, plan: dict[str, Any], model, manifest: dict[str, Any], data) -> dict[str, Any]:
        """Past forecasts scored against arriving actuals (exit 3/4 when the error leaves the backtest's range)."""
        from dsagent.tools.forecast.monitoring import apply

        return apply(plan, model, manifest, data)

    def served_class(self):
        """POST /forecast: the steps after the history, not one answer per posted row."""
        from dsagent.tools.forecast.service import ForecastService

        return ForecastService

    def predict_file(self, ref, data, out, *, horizon=None, version=None, warn=print) -> dict[str, Any]:
        """One row per series and step after the history (not one per input row); without `out`, CSV to stdout."""
        from dsagent.tools.forecast.predict import predict_forecast
        from dsagent.tools.registry import ToolError

        if horizon is not None and horizon < 1:
            raise ToolError(f"--horizon must be a positive number of steps, not {horizon}")
        return predict_forecast(ref, data, horizon, out) | {"noun": "forecast rows"}


# No `assumptions`: define_forecast records a defaulted horizon in the forecast spec itself.
FORECAST = ForecastType(
    "forecast", "future values of a series over time, with 80% and 95% intervals (rolling-origin backtests)", None,
    steps=("profile_data", "define_forecast", "backtest_forecast", "evaluate_forecast", "write_forecast_report"),
    step_text={"profile_data": "First I profile the data.",
               "define_forecast": ("Framing the forecast: frequency, horizon and rolling-origin backtest windows; the "
                                   "latest horizon stays untouched until evaluation."),
               "backtest_forecast": ("Backtesting the naive and seasonal-naive baselines and a global gradient-boosted "
                                     "model, each fit only on the past of every origin."),
               "evaluate_forecast": "Scoring the best model once on the test window, with conformal intervals.",
               "write_forecast_report": "Writing the report, model card and a notebook that re-creates the backtest."})



class RankingType(TaskType):
    """Learning to rank fits its own models (tools/ranking: group-aware split and folds, NDCG@k) on a
    relevance target within a group column; it scores rows itself for predict, serve and monitor."""

    @property
    def needs_target(self) -> bool:
        return True

    def scores_rows(self) -> bool:
        return True

    def answers_problem(self, answers: dict[str, Any]) -> str | None:
        if not answers.get("group_column"):
            return ("task ranking needs the column whose rows are ranked together (the query, user or session): "
                    "put `group_column: COL` in the --answers file")
        return None

    def predict_columns(self, classes: list[str] | None) -> list[str]:
        return ["score", "rank"]

    def predict(self, model, manifest: dict[str, Any], X):
        from dsagent.tools.ranking.task import predict

        return predict(model, manifest, X)

    def apply_monitoring(self, plan: dict[str, Any], model, manifest: dict[str, Any], data) -> dict[str, Any]:
        from dsagent.tools.ranking.monitoring import apply

        return apply(plan, model, manifest, data)

    closing_note = ("See report.md, model_card.md, monitoring.md and notebook.ipynb; score rows with "
                    "`dsagent predict SESSION rows.csv -o out.csv`.")
    no_result = "The run ended without an evaluated ranker."

    def critical_steps(self) -> frozenset[str]:
        return frozenset(self.steps[1:-1])  # each fitting step needs the one before; the report needs them all

    def summary_record(self, artifacts_dir, record_of) -> dict[str, Any] | None:
        import json

        from dsagent.tools import paths

        path = artifacts_dir / paths.EVALUATION
        ev = json.loads(path.read_text()) if path.exists() else {}
        return ev if ev.get("test") else None

    def summary(self, ev: dict[str, Any]) -> str:
        t, k = ev["test"], ev["k"]
        ci = t.get("ndcg_ci") or [float("nan")] * 2
        base = ", ".join(f"{n} {s['ndcg']:.3f}" for n, s in ev["compared"].items() if n != ev["model"])
        return (f"Done. The chosen ranker is {ev['model']}: test NDCG@{k} {t['ndcg']:.4f} (95% CI {ci[0]:.4f} to {ci[1]:.4f}, "
                f"{t['groups']} groups), MAP@{k} {t['map']:.4f}, MRR {t['mrr']:.4f}; against {base}.")


RANKING = RankingType(
    "ranking", "order the rows of each query/user/session by relevance: NDCG@k, MAP, MRR (groups never split)", None,
    steps=("profile_data", "define_ranking", "train_rankers", "evaluate_ranking", "write_ranking_report"),
    step_text={"profile_data": "First I profile the data: column types, missing values, and columns that only identify rows.",
               "define_ranking": ("Framing the ranking: the relevance grades, the group column, NDCG@k, and a test split "
                                  "that keeps every group whole."),
               "train_rankers": ("Comparing a random order and the best single feature with LightGBM's and XGBoost's "
                                 "default rankers, a pointwise regressor and Optuna-tuned rankers, on GroupKFold folds "
                                 "of the training groups."),
               "evaluate_ranking": "Scoring the best ranker once on the untouched test groups, with bootstrap CIs over groups.",
               "write_ranking_report": "Writing the report, model card, monitoring plan and a notebook that re-creates the score."},
    # No goal_words: a goal sentence names tasks without a target there (task_from_goal), and "rank" is
    # common in goals about classification ("rank customers by churn risk"). Ranking is asked for by name.
    assumptions={"top_k": "top_k = 10: NDCG@k, MAP@k and precision@k look at the top 10 (not given)"})

TASK_TYPES = (BINARY, MULTICLASS, REGRESSION, CLUSTERING, ANOMALY, FORECAST, RANKING)
