"""Which unsupervised job a goal sentence asks for. Plain text matching, no ML library: the CLI
and the autopilot call it before anything is fitted."""

from __future__ import annotations

import re

UNSUPERVISED = ("clustering", "anomaly")

# Word stems, matched at the start of a word after folding case: "segments", "Segmentation",
# "grouping", "outlier", "anomalies", "fraudulent" all count.
_STEMS = {
    "clustering": ("segment", "group", "cluster", "persona", "cohort"),
    "anomaly": ("unusual", "outlier", "anomal", "fraud", "abnormal", "suspicious", "odd ", "rare event"),
}


def task_from_goal(goal: str | None) -> str | None:
    """'clustering', 'anomaly' or None (the goal names neither, or both)."""
    if not goal:
        return None
    text = " " + re.sub(r"[^a-z0-9]+", " ", goal.lower()) + " "
    found = [kind for kind, stems in _STEMS.items() if any(f" {s}" in text for s in stems)]
    return found[0] if len(found) == 1 else None


def unsupervised_kind(answers: dict, target: str | None = None) -> str | None:
    """The unsupervised task of a run: `task` when it says so; else, with no target, the goal's words."""
    task = answers.get("task")
    if task in UNSUPERVISED:
        return task
    if task not in (None, "auto", "") or target or answers.get("target"):
        return None
    return task_from_goal(answers.get("goal"))
