"""Validating a supervised target: the checks every built-in task type shares, by prediction shape.

A library module under tools/task_types.py (which re-exports TargetInfo for plugins): it imports
no task-type registry, so the registry and the built-in task types can both use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TargetInfo:
    """What validating a target found: the classes (in encoded order), the positive class, the
    minority share (classification only)."""

    classes: list[str] | None = None
    positive_class: str | None = None
    minority: float | None = None


CLASSIFICATION_MAX_CLASSES = 50


def check_target(tt, y, target: str, positive_class: str | None = None) -> TargetInfo:
    """The built-in checks by prediction shape: numbers for regression; for classification at
    least two classes (exactly two for binary), at most CLASSIFICATION_MAX_CLASSES, the positive
    class last (encoded 1)."""
    import pandas as pd

    from dsagent.tools.registry import ToolError

    if not tt.classification:
        if not pd.api.types.is_numeric_dtype(y):
            raise ToolError(f"target {target!r} is not numeric; use task=binary or multiclass")
        return TargetInfo()
    counts = y.astype(str).value_counts()
    if len(counts) < 2:
        raise ToolError(f"target {target!r} has a single class; a classifier needs at least two")
    if tt.prediction == "binary" and len(counts) != 2:
        raise ToolError(f"target {target!r} has {len(counts)} classes, not 2; use task=multiclass")
    if len(counts) > CLASSIFICATION_MAX_CLASSES:
        raise ToolError(f"target {target!r} has {len(counts)} classes; use task=regression or group the classes")
    classes = sorted(counts.index.tolist())
    if tt.prediction == "binary":
        pos = positive_class if positive_class is not None else _guess_positive(classes, counts)
        if str(pos) not in classes:
            raise ToolError(f"positive_class {pos!r} is not a class of {target!r}; classes: {classes}")
        classes = [c for c in classes if c != str(pos)] + [str(pos)]  # positive class last = encoded 1
        positive_class = str(pos)
    return TargetInfo(classes=classes, positive_class=positive_class, minority=float(counts.min() / counts.sum()))


# Class names taken as the positive class without asking, in this order (agent/questions.py names
# the class in its cost questions from the same list).
CONVENTIONAL_POSITIVE = ("1", "true", "yes", "y", "positive", "pos", "churn", "default", "fraud", "bad", "1.0")


def _guess_positive(classes: list[str], counts) -> str:
    lowered = {c.lower(): c for c in classes}
    for name in CONVENTIONAL_POSITIVE:
        if name in lowered:
            return lowered[name]
    return str(counts.idxmin())  # otherwise the rarer class is usually the one of interest
