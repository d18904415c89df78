"""define_task: fix the target, task type, metric and the untouched test split.

The test split is made here, once, before anything is fitted, and its row positions are saved in
task.json. Training and tuning tools only ever receive the training part (`training_data`);
only evaluation reads the test part (`test_data`).

The readers of the parts for the other tools are in tools/task_data.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dsagent.tools import paths
from dsagent.tools.data import load_dataset
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, tool
from dsagent.tools.schemas import TaskSpec
from dsagent.tools.task_data import derived_entry
from dsagent.tools.task_types import get_task_type
from dsagent.tools.timestamps import parse_times


def default_metric(task: str, minority_frac: float | None) -> str:
    return get_task_type(task).default_metric(minority_frac)


def search_rows_cap(budget_s: float | None, n_features: int | None = None) -> int:
    """How many training rows the model search may use: about 150 rows per second of budget
    (60 s -> 9,000 rows), never fewer than 5,000; up to 3x that for narrow tables (fewer than 24
    feature columns), whose fits cost less per row (measured: XGBoost on diamonds' 9 columns fits
    4x the rows in 1.7x the time). The chosen model is refit on every training row."""
    if budget_s is None:
        return 50_000
    narrow = min(3.0, max(1.0, 24 / n_features)) if n_features else 1.0
    # The budget in whole 5 s steps: what is left when the task is defined varies by a fraction of
    # a second from run to run, and the same data should get the same search rows.
    seconds = max(5.0, budget_s // 5 * 5)
    return int(min(200_000, max(5_000, 150 * seconds * narrow)))


def cv_plan(n_train: int, budget_s: float | None = None, n_features: int | None = None) -> dict[str, Any]:
    """K-fold where data is small, fewer folds and a subsample for the search where it is large
    (2 cores, fixed budgets). `max_rows` caps the rows the search sees; evaluation refits on all."""
    n_search = min(n_train, search_rows_cap(budget_s, n_features))
    if n_search <= 3_000:
        plan: dict[str, Any] = {"kind": "kfold", "folds": 5}
    elif n_search <= 100_000:
        plan = {"kind": "kfold", "folds": 3}
    else:
        plan = {"kind": "holdout", "folds": 1, "fraction": 0.2}
    plan["max_rows"] = n_search
    return plan


@tool
def define_task(
    ctx: ToolContext,
    target: str,
    task: str = "auto",
    metric: str | None = None,
    positive_class: str | None = None,
    time_column: str | None = None,
    group_column: str | None = None,
    drop_columns: list[str] | None = None,
    test_size: float = 0.2,
) -> ToolOutput:
    """Fix the prediction task and hold out an untouched test split before any model is fitted.

    The split is stratified for classification, time-ordered when a time column is given (the
    latest rows become the test set), and grouped when a group column is given (no group on both
    sides). Columns that are ID-like, constant or suspected leaks (from profile_data) are dropped
    along with any you name. Returns the feature list with column kinds, the metric and the CV plan.

    Args:
        target: the column to predict.
        task: binary, multiclass, regression or an installed plugin's task type (`dsagent tools` lists them); auto infers it from the target.
        metric: metric to optimise (roc_auc, pr_auc, log_loss, accuracy, balanced_accuracy, f1, rmse, mae, r2, mape); default follows the task and class balance.
        positive_class: for binary tasks, the class that counts as positive.
        time_column: a time column: split by time instead of at random.
        group_column: a grouping column (e.g. customer id): keep each group on one side of the split.
        drop_columns: extra columns to exclude (e.g. not available at prediction time).
        test_size: fraction of rows held out for the final test.
    """
    from dsagent.tools.metrics import get_metric
    from dsagent.tools.profile_target import check_target, infer_task

    df, info = load_dataset(ctx)
    check_target(df, target)
    if not 0.05 <= test_size <= 0.5:
        raise ToolError("test_size must be between 0.05 and 0.5")
    for col in [time_column, group_column, *(drop_columns or [])]:
        if col and col not in df.columns:
            raise ToolError(f"column {col!r} not in the data; columns are: {', '.join(map(str, df.columns[:40]))}")
    notes: list[str] = []
    y_all = df[target]
    keep = y_all.notna().to_numpy()
    if not keep.all():
        notes.append(f"dropped {int((~keep).sum())} rows whose target is missing")
    positions = np.flatnonzero(keep)
    y = y_all.iloc[positions]
    if task == "auto":
        task = infer_task(y)  # the profile's rule, so define_task and profile_data never disagree

    try:
        tt = get_task_type(task)
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    if not tt.needs_target:
        raise ToolError(f"task {task} has no target: call {tt.steps[1] if len(tt.steps) > 1 else 'its own tool'} instead of define_task")
    found = tt.check_target(y, target, positive_class)
    classes, positive_class, minority = found.classes, found.positive_class, found.minority

    train_local, test_local, split_kind = _split(df, y, positions, tt.stratify(), minority, time_column, group_column,
                                                 test_size, ctx.seed)
    # Everything that shapes the model is decided on the training rows only: the column kinds
    # (hence encodings), the leak check and the other drops, the class balance behind the default
    # metric and the candidates. profile.json still describes the whole file for the reader.
    train_frame = df.iloc[positions[train_local]]
    if classes:
        train_counts = y.iloc[train_local].astype(str).value_counts()
        minority = float(train_counts.min() / len(train_local)) if len(train_counts) == len(classes) else 0.0
    from dsagent.tools.profile_build import column_decisions

    decided = column_decisions(train_frame, target, tt.prediction, ctx.seed)  # by prediction shape
    kinds = decided["kinds"]
    dropped = [{"column": c, "reason": "requested"} for c in (drop_columns or [])]
    for item in decided["drop"]:
        if item["column"] != target and item["column"] not in {d["column"] for d in dropped}:
            dropped.append(item)
    for col in (time_column, group_column):
        if col and col not in {d["column"] for d in dropped}:
            dropped.append({"column": col, "reason": "split column (kept out of the features)"})
    from dsagent.tools.business import unknown_at_prediction

    for col in unknown_at_prediction(list(kinds), ctx.answers.get("features_at_prediction_time"),
                                     [target, time_column, group_column]):
        if col not in {d["column"] for d in dropped}:
            dropped.append({"column": col, "reason": "not known at prediction time (features_at_prediction_time)"})
    current = ctx.answers.get("current_baseline")
    if isinstance(current, str) and current.strip("` ") in kinds and current.strip("` ") not in {d["column"] for d in dropped}:
        dropped.append({"column": current.strip("` "), "reason": "today's predictions (current_baseline): compared with, "
                                                                 "not learned from"})
    drop_set = {d["column"] for d in dropped}
    features = {c: k for c, k in kinds.items() if c not in drop_set and k not in ("id", "constant")}
    if not features:
        raise ToolError("no usable feature columns remain after dropping ID-like, constant and leaking columns")

    derived = with_selection(declared_features(ctx, df, target, time_column), features, len(train_local),
                             tt.prediction, time_column)
    chosen_metric = metric or ctx.answers.get("metric") or tt.default_metric(minority)
    metric_spec = get_metric(chosen_metric, task)
    record = {
        "target": target,
        "task": task,
        "metric": metric_spec.name,
        "greater_is_better": metric_spec.greater_is_better,
        "positive_class": positive_class,
        "classes": classes,
        "minority_frac": minority,
        "features": features,
        "derived": derived,
        "dropped": dropped,
        "n_rows": int(len(df)),
        "n_labelled": int(len(positions)),
        "n_train": int(len(train_local)),
        "n_test": int(len(test_local)),
        "split": {"kind": split_kind, "test_size": test_size, "seed": ctx.seed, "time_column": time_column,
                  "group_column": group_column},
        "cv": cv_plan(len(train_local), ctx.seconds_left(600) if ctx.deadline is not None else None, len(features)),
        "cost_fp": ctx.answers.get("cost_fp"),
        "cost_fn": ctx.answers.get("cost_fn"),
        "notes": notes,
        "train_rows": positions[train_local].tolist(),
        "test_rows": positions[test_local].tolist(),
    }
    TaskSpec.model_validate(record).write(ctx.artifacts_dir)
    summary = {k: record[k] for k in ("target", "task", "metric", "positive_class", "n_train", "n_test", "split", "cv", "notes")}
    summary["classes"] = classes[:20] if classes else None
    summary["n_features"] = len(features)
    if derived:
        summary["derived_features"] = derived["features"]
    summary["dropped"] = dropped[:20]
    return ToolOutput(summary=summary, record={k: v for k, v in record.items() if not k.endswith("_rows")},
                      files={"task": paths.TASK})


def declared_features(ctx: ToolContext, df: pd.DataFrame, target: str, time_column: str | None) -> dict[str, Any] | None:
    """The answers' derived_features, checked against the data: the task's "derived" entry (what
    build_pipeline puts in front of the preprocessing), or None."""
    texts = ctx.answers.get("derived_features") or []
    return derived_entry(texts, [str(c) for c in df.columns], target, time_column) if texts else None


def with_selection(derived: dict[str, Any] | None, features: dict[str, str], n_train: int, prediction: str,
                   time_column: str | None) -> dict[str, Any] | None:
    """The "derived" entry (the feature step in front of the preprocessing) with wide-data column
    selection when the data is wide (tools/select_step.py), for the supervised predictions."""
    if prediction not in ("binary", "multiclass", "regression"):
        return derived
    from dsagent.tools.select_step import selection_entry

    select = selection_entry(features, n_train)
    if not select:
        return derived
    return {**(derived or {"features": [], "time_column": time_column, "inputs": []}), "select": select}


def _split(df: pd.DataFrame, y: pd.Series, positions: np.ndarray, stratified: bool, minority: float | None,
           time_column: str | None, group_column: str | None, test_size: float,
           seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(training positions, test positions, split kind), positions into the labelled rows.

    Under a time split the training positions stay in time order (not file order): the folds,
    the search holdout and any subsample are cut from them, and TimeSeriesSplit over rows in file
    order would validate on the past whenever the file is not sorted by time."""
    from sklearn.model_selection import GroupShuffleSplit, train_test_split

    n = len(positions)
    local = np.arange(n)
    if time_column:
        times = parse_times(df[time_column].iloc[positions]).to_numpy()
        order = np.argsort(times, kind="stable")
        cut = int(round(n * (1 - test_size)))
        return order[:cut], np.sort(order[cut:]), "time"
    if group_column:
        groups = df[group_column].iloc[positions].astype(str).to_numpy()
        gss = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        train_local, test_local = next(gss.split(local, groups=groups))
        return train_local, test_local, "group"
    # Stratifying reads every label, the test rows' too: it decides which rows are held out, not
    # what the model learns from the training rows.
    stratify = y.astype(str).to_numpy() if stratified and minority and minority * n >= 2 else None
    train_local, test_local = train_test_split(local, test_size=test_size, random_state=seed, stratify=stratify)
    return np.sort(train_local), np.sort(test_local), "stratified" if stratify is not None else "random"
