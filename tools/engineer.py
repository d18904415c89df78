"""engineer_features: add derived features (`name = expression`, tools/derived.py) to the task and
measure what each one changes in cross-validation.

A thin adapter: the language is tools/derived.py, the Pipeline step tools/derived_step.py, the
CV machinery tools/cv.py. The accepted features are written into task.json's "derived" entry,
so train, tune, evaluate, the notebook and the saved model all compute them from raw rows.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import numpy as np

from dsagent.tools import paths
from dsagent.tools.data import load_dataset
from dsagent.tools.derived_record import DERIVED_RECORD, read_record
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput, artifact_path, tool
from dsagent.tools.task_data import derived_entry, encode_target, load_task, subsample

# A quick, strong, stable model to judge a feature by: boosted trees with a fixed number of rounds
# (no early stopping, so the comparison is not moved by where a fold happened to stop).
PROBE = {"family": "hist_gb", "params": {"max_iter": 100, "early_stopping": False}}


@tool
def engineer_features(ctx: ToolContext, expressions: list[str], keep: Literal["helpful", "all"] = "helpful") -> ToolOutput:
    """Add derived features to the task and report the cross-validated change each one brings.

    Each expression is `name = expression` in a small safe language: column names (backquote
    names with spaces), + - * / ** and comparisons, log sqrt abs clip(x, lo, hi) where(cond, a, b),
    year month dayofweek hour days_between(a, b) for dates, length(c) contains(c, "text"), and
    group aggregates such as `mean(income) by region` or `count() by customer_id over 90 days`
    (a window needs the task's time column; it only reads earlier rows). The features are computed
    inside the model's pipeline from raw columns, fitted on training rows only. Call after
    define_task and before train_models.

    Args:
        expressions: derived features, e.g. ["debt_ratio = debt / income"].
        keep: "helpful" keeps a feature only when it improves CV by more than its standard error; "all" keeps every one (features the user asked for).
    """
    task = load_task(ctx)
    df, _ = load_dataset(ctx)
    if len(df) != task["n_rows"]:
        raise ToolError("the data file changed since define_task; call define_task again")
    current = list((task.get("derived") or {}).get("features") or [])
    time_column = task["split"].get("time_column")
    columns = [str(c) for c in df.columns]
    if not expressions:
        raise ToolError("give at least one expression, e.g. ['ratio = a / b']")
    from dsagent.tools.derived import DerivedError, parse_feature

    try:
        new = {parse_feature(e).name: e for e in expressions}
    except DerivedError as exc:
        raise ToolError(str(exc)) from None
    base = [f for f in current if parse_feature(f).name not in new]  # a feature given again is measured again
    entry = derived_entry(base + list(expressions), columns, task["target"], time_column)

    # The search rows and folds train_models uses, with every column any of the features reads.
    wide = task.model_copy(update={"derived": entry})
    from dsagent.tools.task_data import input_columns
    from dsagent.tools.cv import cross_validate, cv_splits

    part = df.iloc[task["train_rows"]]
    X, y = subsample(part[input_columns(wide)], encode_target(task, part[task["target"]]), task,
                     task["cv"].get("max_rows") or len(part), ctx.seed)
    splits = cv_splits(task, X, y, ctx)
    sign = 1.0 if task["greater_is_better"] else -1.0

    def folds(features: list[str]) -> np.ndarray:
        trial = task.model_copy(update={"derived": derived_entry(features, columns, task.target, time_column) if features else None})
        return np.asarray(cross_validate(PROBE, X, y, trial, ctx, splits).fold_scores, dtype=float)

    t0 = time.perf_counter()
    before = folds(base)
    rows: list[dict[str, Any]] = []
    for i, (name, text) in enumerate(new.items()):
        ctx.report(f"measuring {name}", (i + 1) / (len(new) + 1))
        after = folds(base + [text])
        gain = sign * (after - before)  # > 0: better, whatever the metric's direction
        se = float(np.std(gain, ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else float("nan")
        helpful = bool(gain.mean() > (se if np.isfinite(se) else 0.0))
        rows.append({"name": name, "expression": text.split("=", 1)[1].strip(), "cv_before": round(float(before.mean()), 6),
                     "cv_after": round(float(after.mean()), 6), "cv_change": round(float(after.mean() - before.mean()), 6),
                     "se": round(se, 6) if np.isfinite(se) else None, "helps": helpful, "kept": keep == "all" or helpful})
    kept = base + [new[r["name"]] for r in rows if r["kept"]]
    task.derived = derived_entry(kept, columns, task.target, time_column) if kept else None
    task.write(ctx.artifacts_dir)
    record = {"metric": task["metric"], "greater_is_better": task["greater_is_better"], "probe": PROBE,
              "folds": len(splits), "rows": int(len(X)), "seconds": round(time.perf_counter() - t0, 2), "features": rows,
              "in_task": kept}
    previous = read_record(ctx.artifacts_dir)
    record["history"] = previous.get("history", []) + [r for r in previous.get("features", [])
                                                       if r["name"] not in new]
    artifact_path(ctx, DERIVED_RECORD).write_text(json.dumps(record, indent=1))
    summary = {"metric": task["metric"], "cv_baseline": round(float(before.mean()), 5),
               "features": [{k: r[k] for k in ("name", "cv_change", "se", "kept")} for r in rows],
               "in_task": [parse_feature(f).name for f in kept]}
    return ToolOutput(summary=summary, record=record, files={"derived_features": DERIVED_RECORD, "task": paths.TASK})
