"""Which task without a target a run asks for. Plain text matching, no ML library: the CLI and the
autopilot call it before anything is fitted. The task types (tools/task_types.py) own the words."""

from __future__ import annotations

from dsagent.tools.task_types import task_from_goal, task_names

__all__ = ["UNSUPERVISED", "task_from_goal", "unsupervised_kind"]

UNSUPERVISED = ("clustering", "anomaly")  # the built-in ones; the registry may hold more


def unsupervised_kind(answers: dict, target: str | None = None) -> str | None:
    """The task without a target of a run: `task` when it names one; else, with no target, the goal's words."""
    task = answers.get("task")
    if task in task_names(supervised=False):
        return task
    if task not in (None, "auto", "") or target or answers.get("target"):
        return None
    return task_from_goal(answers.get("goal"))
