"""Work without a target: segmentation (clustering) and anomaly detection.

One object per task kind (`ClusteringTask`, `AnomalyTask`) owns what a TaskType of the core
registry would own: fitting and choosing a model, predicting on raw rows, describing the result,
its monitoring reference. Thin tools (dsagent.tools.unsupervised_tools) call them; the core only
dispatches on the task kind (predict, monitor, report, notebook).

`unsupervised.json` in the artifacts is the fitted task's record (the analogue of task.json +
evaluation.json of the supervised tasks): its presence marks a session as unsupervised.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dsagent.tools.paths import UNSUPERVISED as RECORD
from dsagent.tools.unsupervised.goal import UNSUPERVISED, task_from_goal, unsupervised_kind

__all__ = ["RECORD", "UNSUPERVISED", "saved_record", "task_class", "task_from_goal", "unsupervised_kind"]


def saved_record(artifacts_dir: Path) -> dict[str, Any] | None:
    """The fitted unsupervised task of a session, or None for a supervised (or unfinished) one."""
    path = Path(artifacts_dir) / RECORD
    return json.loads(path.read_text()) if path.exists() else None


def task_class(kind: str):
    """The task object's class for a kind (imported lazily: both pull scikit-learn)."""
    if kind == "clustering":
        from dsagent.tools.unsupervised.segment import ClusteringTask

        return ClusteringTask
    if kind == "anomaly":
        from dsagent.tools.unsupervised.anomaly import AnomalyTask

        return AnomalyTask
    raise KeyError(kind)
