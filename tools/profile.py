"""profile_data: what is in the table, what kind each column is, and what could go wrong.

The plain helpers the training tools reuse are in the library: `infer_column_kinds(df)`
(tools/profile_columns.py), `infer_task(y)` and `check_target(df, target)` (tools/profile_target.py).

Speed matters (the profile runs on every dataset before anything else): whole-column work is
vectorised numpy/pandas (one sort per numeric column gives unique count, quantiles and IQR
outliers together; above NUMERIC_SAMPLE rows the quantiles come from a sample while counts,
min/max/mean/std stay exact; wide frames are reduced as one 2-D block); the expensive checks
(text and date detection, the single-feature leakage check) look at samples, and the record's
"method" says which.

The tool only: the library is tools/profile_columns.py (column facts and kinds, duplicates),
tools/profile_target.py (the target, leakage) and tools/profile_build.py (the record, its summary).
"""

from __future__ import annotations

import json
import os

from dsagent.tools.dask_profile import dask_reason, profile_on_dask
from dsagent.tools.data import load_dataset
from dsagent.tools.paths import PROFILE
from dsagent.tools.profile_build import build_profile, compact_summary
from dsagent.tools.registry import ToolContext, ToolOutput, artifact_path, tool


# ---------------------------------------------------------------------------------------------
# The tool


@tool
def profile_data(ctx: ToolContext, target: str | None = None) -> ToolOutput:
    """Profile the session's dataset before any modelling: call this first.

    Reports the shape; each column's kind (numeric, categorical, boolean, datetime, text = free
    text, id = ID-like, constant), missingness and cardinality; duplicate rows and duplicate or
    constant columns; outliers (IQR rule) and skew; how the file was read (format, encoding,
    delimiter, anything that was detected or cleaned). With a target it also infers the task
    (binary, multiclass or regression), shows class balance or target skew and missing labels,
    and flags leakage suspects: columns that alone predict the target almost perfectly on
    held-out rows (ask whether they are known at prediction time; near-deterministic ones are
    suggested for dropping, merely strong ones are kept and marked "kept") and ID-like columns. The
    answer lists only notable columns and suggests columns to drop, with reasons; the full
    per-column profile is saved as profile.json in the session's artifacts.

    Args:
        target: name of the column to predict, exactly as in the data (case-sensitive). Omit it to
            profile without target analysis (the session's answered target is used if there is one).
            An unknown, constant, single-class, all-missing or ID-like target is an error that
            suggests close column names.
    """
    target = target or (ctx.answers or {}).get("target") or None
    reason = dask_reason(ctx)
    if reason:  # data read with Dask on the cluster (a directory of parts, or a file over the threshold)
        return profile_on_dask(ctx, target, reason)
    ctx.report("loading data", 0.0)
    df, info = load_dataset(ctx)
    task = (ctx.answers or {}).get("task")
    ctx.report("profiling columns", 0.3)
    record = build_profile(df, info, target, task=task, seed=ctx.seed)
    path = artifact_path(ctx, PROFILE)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, path)
    ctx.report("profile saved", 1.0)
    return ToolOutput(summary=compact_summary(record), record=record, files={"profile": PROFILE})
