"""The monitoring plan of a retrained version: the parent's plan rebased on the new model.

`dsagent monitor` reads the plan beside the model it checks (tools/monitor.py find_plan), so a
version without one cannot be monitored, and the parent's plan would be the wrong yardstick: its
references describe the old training data and the old model's predictions, and its performance
floor comes from the old test score. So retrain writes `model/vN/monitoring.json` (and .md) built
the way plan_monitoring builds one at training time (monitor.build_plan), from what the new
version saw and did:
  - feature and label references: the rows the challenger was fitted on;
  - prediction (and, for a binary model, decision) references and the performance floors: the
    challenger's out-of-sample predictions on the held-out newest rows, its score there and that
    score's bootstrap 95% CI;
and what the session decided, carried over from the parent's plan: the important features, the
latency budget, the retraining schedule. A task type that monitors with its own plan (forecast,
segments...) gets the parent's plan unchanged, with a note saying so.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools import paths, versions
from dsagent.tools.metrics import Metric, bootstrap_ci
from dsagent.tools.registry import ToolError


def parent_plan(folder: Path, parent: str) -> dict[str, Any] | None:
    """The plan the parent version is monitored with (the session's plan for v1), or None."""
    from dsagent.tools.monitor import find_plan

    try:
        return json.loads(find_plan(versions.version_file(folder, parent)).read_text(encoding="utf-8"))
    except (ToolError, OSError, ValueError):
        session_plan = folder.parent / paths.MONITORING  # a parent retrained before plans were written
        try:
            return json.loads(session_plan.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None


def rebased_plan(parent: dict[str, Any], task: dict[str, Any], metric: Metric, X_fit: pd.DataFrame,
                 y_fit: np.ndarray, y_hold: np.ndarray, hold: tuple[np.ndarray, np.ndarray | None],
                 threshold: float | None, *, version: str, parent_version: str, seed: int) -> dict[str, Any]:
    """The plan for `version`: build_plan on the challenger's fit rows and held-out predictions.
    `hold` is (decisions at the shipped threshold, probabilities) on the held-out rows."""
    from dsagent.tools.monitor import _prediction_reference, build_plan
    from dsagent.tools.monitor_labels import decision_reference, label_reference, reference_checks
    from dsagent.tools.metrics import score
    from dsagent.tools.task_types import get_task_type

    stamp = {"model_version": version, "rebased_from": parent_version}
    if get_task_type(parent["task"]).prediction is None:  # monitored by its own task type's plan
        return copy.deepcopy(parent) | stamp | {
            "rebase_note": f"carried over from {parent_version} unchanged: this task type's references are not rebuilt on retrain"}
    pred, proba = hold
    value = score(metric, y_hold, pred, proba)
    ci = bootstrap_ci(metric, y_hold, pred, proba, seed=seed, time_limit=2.0)
    performance = parent.get("performance") or {}
    ev = {"metric": metric.name, "greater_is_better": metric.greater_is_better, "test_score": value,
          "test_ci": list(ci) if ci else None, "scored_at": performance.get("scored_at"), "n_test": len(y_hold)}
    source = f"{len(pred)} predictions of {version} on the held-out newest rows of the retraining data"
    decisions = decision_reference(task, proba, threshold)
    plan = build_plan(X_fit, task["features"], task, ev, _prediction_reference(task, pred, proba) | {"source": source},
                      important=parent.get("important_features"), latency_ms=parent.get("latency_budget_ms"),
                      retrain_every_days=(parent.get("schedule") or {}).get("retrain_every_days", 90),
                      n_train=len(X_fit), n_test=len(y_hold), labels=label_reference(task, y_fit),
                      decisions=decisions | {"source": source} if decisions else None,
                      checks=reference_checks(task, metric.name, y_hold, proba, seed))
    return plan | stamp


def write_plan(model_file: Path, plan: dict[str, Any]) -> Path:
    """monitoring.json and monitoring.md beside the version's model file (where find_plan looks)."""
    from dsagent.tools.monitor import plan_markdown
    from dsagent.tools.schemas import MonitoringPlan

    MonitoringPlan.model_validate(plan)  # the shape dsagent monitor reads
    folder = Path(model_file).parent
    path = folder / Path(paths.MONITORING).name
    path.write_text(json.dumps(plan, indent=1, default=str), encoding="utf-8")
    (folder / Path(paths.MONITORING_MD).name).write_text(plan_markdown(plan), encoding="utf-8")
    return path
