"""Task types as plugins: the `dsagent.task_types` entry-point group.

A task type owns what differs between kinds of work, so that adding one (forecasting, ranking, a
quantile regression...) needs no edit to the core: how the target is validated and encoded, the
metrics and the default metric, whether splits and folds are stratified, the candidate model
families (and the parameters it sets on them), the workflow the autopilot follows, the predict
columns, and, for work that fits its own models (clustering, anomaly), the fitting object behind
predict, report, notebook and monitoring.

`prediction` is the shape of what a supervised task type's models output, which the core
pipeline (cross-validation, ensembles, evaluation, serving) works with: "binary" / "multiclass"
(class probabilities) or "regression" (one number per row). A plugin task type picks one and
changes what it needs through the methods below; families are built for that shape.

The built-ins (tools/builtin_task_types.py) register through pyproject.toml exactly as a
third-party package would. No ML library is imported here: the CLI, the answers and the
autopilot read the registry in the agent process. Methods that need one import it themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dsagent.tools.target_check import TargetInfo, check_target

ENTRY_POINT_GROUP = "dsagent.task_types"
BUILTIN_MODULE = "dsagent.tools.builtin_task_types"
PREDICTIONS = ("binary", "multiclass", "regression")

# The supervised workflow, written once: the autopilot walks it, the MCP instructions, task_status
# phases and the personas' tool lists are read against it (tests/test_task_types.py).
SUPERVISED_STEPS = ("profile_data", "ask_user", "define_task", "engineer_features", "train_models", "tune_model",
                    "build_ensemble", "evaluate_model", "explain_model", "write_report", "plan_monitoring",
                    "write_notebook")
DELIVERABLE_STEPS = ("write_report", "plan_monitoring", "write_notebook")


@dataclass(frozen=True)
class TaskType:
    name: str
    description: str
    prediction: str | None  # "binary" | "multiclass" | "regression"; None: the task fits its own models
    steps: tuple[str, ...] = SUPERVISED_STEPS  # the autopilot's workflow, in order
    # What the autopilot says before each step (when it says nothing more specific).
    step_text: dict[str, str] = field(default_factory=dict, compare=False)
    goal_words: tuple[str, ...] = ()  # word stems that name this task in a goal sentence (no target needed)
    # Answers keys the task reads, with the note recorded as an assumption when one is not given.
    assumptions: dict[str, str] = field(default_factory=dict, compare=False)
    package: str = field(default="dsagent", compare=False)  # filled in by the registry

    # -- what kind of work --------------------------------------------------------------------
    @property
    def needs_target(self) -> bool:
        return self.prediction is not None

    @property
    def classification(self) -> bool:
        return self.prediction in ("binary", "multiclass")

    @property
    def regression(self) -> bool:
        """Whether the models output one number per row (no classes, no probabilities)."""
        return self.prediction == "regression"

    @property
    def thresholded(self) -> bool:
        """Whether a decision threshold on the positive class's probability applies (two classes)."""
        return self.prediction == "binary"

    @property
    def encoder_target_type(self) -> str:
        """The target type scikit-learn's TargetEncoder is told ("continuous" for one number per row)."""
        return {"regression": "continuous", "binary": "binary"}.get(self.prediction, "multiclass")

    # -- the target ---------------------------------------------------------------------------
    def check_target(self, y, target: str, positive_class: str | None = None) -> TargetInfo:
        """Validate the labelled target values (a pandas Series) and say how they encode; raise
        ToolError with what to do when they do not fit this task."""
        return check_target(self, y, target, positive_class)

    def encode_target(self, spec, y):
        """The target as the models see it: class indices (classification) or floats."""
        if not self.classification:
            return y.to_numpy(dtype=float)
        lookup = {c: i for i, c in enumerate(spec["classes"])}
        return y.astype(str).map(lookup).to_numpy(dtype=int)

    def stratify(self) -> bool:
        """Whether splits and folds keep the class shares (classification)."""
        return self.classification

    # -- metrics ------------------------------------------------------------------------------
    def default_metric(self, minority_frac: float | None) -> str:
        if self.prediction == "binary":
            return "pr_auc" if minority_frac is not None and minority_frac < 0.15 else "roc_auc"
        return "log_loss" if self.prediction == "multiclass" else "rmse"

    def metrics(self) -> dict[str, Any]:
        """The metrics (tools.metrics.Metric by name) that apply to this task."""
        from dsagent.tools.metric_table import METRICS

        return {n: m for n, m in METRICS.items() if self.name in m.tasks}

    # -- models -------------------------------------------------------------------------------
    def supports(self, family) -> bool:
        """Whether a model family (tools.families.ModelFamily) may model this task: it says so."""
        return self.name in family.tasks

    def family_params(self, family: str) -> dict[str, Any]:
        """Parameters this task sets on a family's estimator (explicit params still win)."""
        return {}

    def candidate_variants(self, spec, y) -> dict[str, dict[str, Any]]:
        """Candidates beyond the families themselves that this data calls for (by name)."""
        return {}

    # -- outputs ------------------------------------------------------------------------------
    def predict_columns(self, classes: list[str] | None) -> list[str]:
        """The columns `dsagent predict` writes (besides the input rows' order)."""
        return ["prediction"] + [f"proba_{c}" for c in (classes or [])] if self.classification else ["prediction"]

    def answers_problem(self, answers: dict[str, Any]) -> str | None:
        """What the answers lack for this task, as a one-line error with what to do (checked before a
        run starts), or None."""
        return None

    def scores_rows(self) -> bool:
        """Whether a task that fits its own models scores raw rows itself (predict/serve/monitor call
        its predict and apply_monitoring): the ones without a target and ranking do; forecasting
        predicts from history instead (tools/forecast/predict.py)."""
        return not self.needs_target

    def predict_file(self, ref, data, out, *, horizon=None, version=None, warn=print) -> dict[str, Any] | None:
        """`dsagent predict` with a saved model of this task, when its rows out are not one per row in
        (a forecast: steps after the history): write them and say what was written ({"rows", "out",
        ...}; "noun" names the rows when not "predictions"). None (the default): score each input row
        (tools.serving.predict_file, which this module cannot import: serving reads the registry)."""
        return None

    def serve_problem(self) -> str | None:
        """Why `dsagent serve` cannot serve this task's models at all, as a one-line error with what to
        do instead, or None (it can: through served_class)."""
        return None

    def served_class(self):
        """The class `dsagent serve` loads this task's models with, when they are not scored one answer
        per posted row (tools.service.ServedModel, POST /predict): a subclass with its own route, such
        as a forecast's POST /forecast (tools/forecast/service.py). None: ServedModel."""
        return None

    # -- what the report, model card, evaluation and monitoring write, compute and check: the
    # defaults by prediction shape live in tools/task_sections.py; a plugin overrides one to change it.
    def segment_columns(self):
        """The per-group table's columns (tools.task_sections.SegmentColumn), also judged for gaps."""
        from dsagent.tools.task_sections import SEGMENT_COLUMNS

        return SEGMENT_COLUMNS[self.prediction]

    def segment_stats(self, y, pred, decision) -> dict[str, Any]:
        """The segment_columns values of one group's test rows."""
        from dsagent.tools.task_sections import segment_stats

        return segment_stats(self.prediction, y, pred, decision)

    def practical_meaning(self, task: dict[str, Any], ev: dict[str, Any], answers: dict[str, Any], view) -> list[str]:
        """The report's lines on what the test score means in practice (costs, typical error...)."""
        from dsagent.tools.task_sections import practical_meaning

        return practical_meaning(self.prediction, task, ev, answers, view)

    def evaluation_plots(self, ctx, task, model_name: str, y_test, pred, proba, threshold, record: dict[str, Any]) -> dict[str, str]:
        """evaluate_model's plots of the test predictions (label -> path under artifacts/)."""
        from dsagent.tools.task_sections import evaluation_plots

        return evaluation_plots(self.prediction, ctx, task, model_name, y_test, pred, proba, threshold, record)

    def report_plots(self, ctx, task: dict[str, Any], view) -> dict[str, tuple[str, str]]:
        """Plots the report draws itself from the test predictions: label -> (path under artifacts/, caption)."""
        from dsagent.tools.task_sections import report_plots

        return report_plots(self.prediction, ctx, task, view)

    def model_output(self, task: dict[str, Any]) -> str:
        """The model card's sentence on what the model outputs."""
        from dsagent.tools.task_sections import model_output

        return model_output(self.prediction, task)

    def row_loss(self, y, pred, proba):
        """Each test row's loss, which evaluation ranks segments by."""
        from dsagent.tools.task_sections import row_loss

        return row_loss(self.prediction, y, pred, proba)

    def monitored_predictions(self, task: dict[str, Any], pred, proba):
        """(values, what they are) of the model output monitoring keeps a reference of (text: categorical)."""
        from dsagent.tools.task_sections import monitored_predictions

        return monitored_predictions(self.prediction, task, pred, proba)

    def monitored_output(self, preds, manifest: dict[str, Any]):
        """The column of the predict output that monitoring compares with that reference."""
        from dsagent.tools.task_sections import monitored_output

        return monitored_output(self.prediction, preds, manifest)

    def fitted_class(self):
        """For a task that fits its own models (no `prediction`): the class of its task object
        (fit/predict/report/notebook/monitoring, as tools.unsupervised's), else None."""
        return None

    # -- the autopilot's walk of `steps` for a task without a `prediction` (clustering, anomaly,
    # forecast, a plugin's): the steps' texts and arguments and the closing summary come from here.
    # (Supervised task types run the core planner over their steps: budgets, tuning, ensembles.)
    closing_note = "See report.md, model_card.md, monitoring.md and notebook.ipynb in the session's artifacts."
    no_result = "The run ended without a fitted model."

    def critical_steps(self) -> frozenset[str]:
        """Steps whose failure ends the run (profile_data always does): by default the fit after profiling."""
        return frozenset(self.steps[1:2]) if self.prediction is None else frozenset()

    def step_args(self, step: str, target: str | None) -> dict[str, Any]:
        """Arguments the autopilot passes to one of this task's steps (it adds the notebook's timeout)."""
        return {}

    def summary_record(self, artifacts_dir, record_of) -> dict[str, Any] | None:
        """The record the closing summary is written from (None: nothing was fitted); `record_of(step)`
        reads the record a step wrote ({} when it wrote none)."""
        import json

        from dsagent.tools import paths

        path = artifacts_dir / paths.UNSUPERVISED
        return json.loads(path.read_text()) if path.exists() else None

    def summary(self, record: dict[str, Any]) -> str:
        """The autopilot's closing sentence for a task that fits its own models, from its record."""
        return "Done."

    def predict(self, model, manifest: dict[str, Any], X):
        """Predict columns for raw rows (serve, predict, monitor)."""
        return self.fitted_class().predict(model, manifest, X)

    def write_report(self, ctx, record: dict[str, Any]):
        raise NotImplementedError(f"task type {self.name} writes no report of its own")

    def build_notebook(self, ctx, session: dict[str, Any], record: dict[str, Any]):
        raise NotImplementedError(f"task type {self.name} builds no notebook of its own")

    def write_monitoring_plan(self, ctx, record: dict[str, Any], retrain_every_days: int):
        raise NotImplementedError(f"task type {self.name} plans no monitoring of its own")

    def apply_monitoring(self, plan: dict[str, Any], model, manifest: dict[str, Any], data) -> dict[str, Any]:
        raise NotImplementedError(f"task type {self.name} has no monitoring checks of its own")


_TYPES: dict[str, TaskType] | None = None


def task_types() -> dict[str, TaskType]:
    """Every installed task type by name, built-ins first. A broken third-party plugin is skipped
    with a warning (a broken built-in fails loudly)."""
    global _TYPES
    if _TYPES is None:
        from dsagent.tools.plugins import load_registry

        def check(tt: TaskType) -> None:
            if tt.prediction not in (*PREDICTIONS, None):
                raise ValueError(f"prediction {tt.prediction!r}: one of {PREDICTIONS} or None")

        _TYPES = load_registry(ENTRY_POINT_GROUP, BUILTIN_MODULE, "TASK_TYPES", TaskType, "task type", check)
    return _TYPES


def get_task_type(name: str) -> TaskType:
    types = task_types()
    if name not in types:
        raise ValueError(f"unknown task {name!r}; installed task types: {', '.join(types)}")
    return types[name]


def model_task_type(ref, version: str | None = None) -> TaskType:
    """The task type a saved model (session, model dir or file) was trained for, from its manifest."""
    import json

    from dsagent.tools.model_io import MANIFEST, resolve_model_path
    from dsagent.tools.registry import ToolError

    try:
        task = json.loads(resolve_model_path(ref, version).with_name(MANIFEST).read_text()).get("task")
    except (OSError, ValueError):
        task = None  # no readable manifest: the tabular path reports what is wrong with the model
    types = task_types()
    if task and task not in types:
        raise ToolError(f"the model was trained for task {task!r}, which no installed package provides; install the "
                        f"plugin that adds it (installed task types: {', '.join(types)})")
    return types.get(task) or types["binary"]


def fits_own_models(task: str | None) -> TaskType | None:
    """The task type of a task that fits its own models and scores rows itself (clustering,
    anomaly, ranking...), else None."""
    tt = task_types().get(task) if task else None
    return tt if tt is not None and tt.prediction is None and tt.scores_rows() else None


# What shape_type answers for a task without a prediction shape (none given, clustering...): every
# shape question (classification, regression, thresholded) is False.
NO_SHAPE = TaskType("(no prediction shape)", "a task whose models output no per-row prediction shape", None)


def shape_type(task: str | None) -> TaskType:
    """The built-in task type of a task's prediction shape (a plugin's count task -> regression), which
    decisions about the output's shape ask (classes? one number? a threshold?); NO_SHAPE when it has none."""
    shape = prediction_of(task) if task else None
    return task_types()[shape] if shape in PREDICTIONS else NO_SHAPE


def prediction_of(task: str) -> str:
    """The prediction shape of a task by name (a built-in kind names itself)."""
    types = task_types()
    return types[task].prediction if task in types and types[task].prediction else task


def task_names(supervised: bool | None = None) -> list[str]:
    """Installed task names; only those with (True) or without (False) a target when asked."""
    return [t.name for t in task_types().values() if supervised is None or t.needs_target == supervised]


def task_from_goal(goal: str | None) -> str | None:
    """The task without a target that a goal sentence names ('segment these customers'), or None
    (it names none, or more than one). Word stems match at a word's start, case folded."""
    import re

    if not goal:
        return None
    text = " " + re.sub(r"[^a-z0-9]+", " ", goal.lower()) + " "
    found = [t.name for t in task_types().values() if any(f" {s}" in text for s in t.goal_words)]
    return found[0] if len(found) == 1 else None
