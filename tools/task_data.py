"""The task's data for the tools after define_task: task.json, the encoded target, the training
part (`training_data`), the rows the model search works on (`search_data`, a deterministic
subsample on large data) and the untouched test part (`test_data`, refused to all but evaluation).
A library module (no @tool): every tool reads its rows here, none imports define_task's module.
Generated notebooks call `subsample` from here too."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools.data import DataError, load_dataset
from dsagent.tools.registry import ToolContext, ToolError
from dsagent.tools.schemas import TaskSpec
from dsagent.tools.task_types import get_task_type


def derived_entry(texts: list[str], columns: list[str], target: str, time_column: str | None) -> dict[str, Any]:
    from dsagent.tools.derived import DerivedError, check_features, feature_inputs

    try:
        check_features(list(texts), columns, target=target, time_column=time_column)
    except DerivedError as exc:
        raise ToolError(str(exc)) from None
    return {"features": list(texts), "time_column": time_column, "inputs": feature_inputs(list(texts), time_column)}


def input_columns(task: dict[str, Any]) -> list[str]:
    """The raw columns the model reads: the features, then the columns only derived features read."""
    features = list(task["features"])
    extra = (task.get("derived") or {}).get("inputs") or []
    return features + [c for c in extra if c not in features]


# -- helpers for the other tools -------------------------------------------------------------
def load_task(ctx: ToolContext) -> TaskSpec:
    task = TaskSpec.read(ctx.artifacts_dir)
    if task is None:
        raise ToolError("no task defined yet; call define_task first")
    return task


def encode_target(task: TaskSpec, y: pd.Series) -> np.ndarray:
    return get_task_type(task["task"]).encode_target(task, y)


def _part(ctx: ToolContext, rows_key: str) -> tuple[pd.DataFrame, np.ndarray, TaskSpec]:
    task = load_task(ctx)
    df, _ = load_dataset(ctx)
    if len(df) != task.n_rows:
        raise DataError("the data file changed since define_task; call define_task again")
    part = df.iloc[getattr(task, rows_key)]
    X = part[input_columns(task)]
    return X, encode_target(task, part[task.target]), task


def training_data(ctx: ToolContext) -> tuple[pd.DataFrame, np.ndarray, TaskSpec]:
    """The training part only: what train and tune may see."""
    return _part(ctx, "train_rows")


def search_data(ctx: ToolContext) -> tuple[pd.DataFrame, np.ndarray, TaskSpec]:
    """The rows the model search (train, tune, ensemble) works on: the training part, or a
    deterministic (stratified) subsample of it when it exceeds the plan's max_rows. Every search
    tool gets the same rows, so their out-of-fold predictions line up."""
    X, y, task = training_data(ctx)
    return (*subsample(X, y, task, task.cv.max_rows or len(X), ctx.seed), task)


def subsample(X: pd.DataFrame, y: np.ndarray, task: dict[str, Any], cap: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A deterministic subsample of at most `cap` rows, in their original order (stratified by
    class when every class has two rows; never for a time split). The notebook calls it too."""
    if len(X) <= cap:
        return X, y
    keep = subsample_positions(y, task, cap, seed)
    return X.iloc[keep], y[keep]


def subsample_positions(y: np.ndarray, task: dict[str, Any], cap: int, seed: int) -> np.ndarray:
    """The sorted positions `subsample` keeps (all of them when there are at most `cap`)."""
    if len(y) <= cap:
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split

    # Keyed reads on purpose: generated notebooks pass a plain {"task": ..., "split": {"kind": ...}}.
    strat = (y if get_task_type(task["task"]).stratify() and task["split"]["kind"] != "time" and np.bincount(y).min() >= 2
             else None)
    keep, _ = train_test_split(np.arange(len(y)), train_size=int(cap), random_state=seed, stratify=strat)
    return np.sort(keep)


# The tools that may read the test split: evaluate_model scores the chosen model on it (the model
# is fitted on training rows first), explain_model measures the saved model's importances on it,
# plan_monitoring takes the saved model's held-out scores as the reference its performance checks
# compare a new batch with. None decides anything the model learns.
TEST_READERS = {("dsagent.tools.evaluate", "evaluate_model"), ("dsagent.tools.explain", "explain_model"),
                ("dsagent.tools.monitor", "plan_monitoring")}


def test_data(ctx: ToolContext) -> tuple[pd.DataFrame, np.ndarray, TaskSpec]:
    """The untouched test part: read only by evaluation, after the model is chosen.

    Any other caller is refused, so a tool that would let test rows shape the model (a feature
    decision, a fit, a threshold) fails loudly instead of leaking quietly."""
    caller = sys._getframe(1)
    who = (caller.f_globals.get("__name__"), caller.f_code.co_name)
    if who not in TEST_READERS:
        raise ToolError(f"the test split is read only by evaluate_model, explain_model and plan_monitoring, not by "
                        f"{who[0]}.{who[1]}; "
                        "use training_data or search_data")
    return _part(ctx, "test_rows")
