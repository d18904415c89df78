"""profile_data on a Dask cluster: the statistics of data that is not read into one process (issue 23).

profile_data hands over here when the run reads its data with Dask (session.json `dask`, decided
by dsagent.tools.scale). One pass over the partitions computes, on the workers:

- exact: the row count, missing values per column, the target's class counts (classification);
- approximate: quantiles (Dask merges per-partition percentiles, so they are not exact order
  statistics) and distinct counts (HyperLogLog, `nunique_approx`, within a few percent).

The record says which statistics are approximate, and the report repeats it. What the in-memory
profile adds (leakage suspects by single-feature CV, duplicate rows and columns, outliers, text
statistics) is not computed here and is listed as not computed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from dsagent.tools.cluster import connect
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput

QUANTILES = (0.01, 0.25, 0.5, 0.75, 0.99)
MAX_CLASSES = 50  # as train_on_cluster: a numeric target with more distinct values is a regression
APPROXIMATE = {"quantiles": "merged from per-partition percentiles (Dask), not exact order statistics",
               "n_unique": "HyperLogLog estimate (Dask nunique_approx), typically within a few percent"}
NOT_COMPUTED = ["leakage suspects (single-feature CV)", "duplicate rows and columns", "outliers (IQR)", "text statistics"]


def dask_reason(ctx: ToolContext) -> str | None:
    """Why this session reads its data with Dask (set by the runtime when it started the cluster), or None."""
    if not ctx.cluster:
        return None
    path = Path(ctx.session_dir) / "session.json"
    return (json.loads(path.read_text()).get("dask") or None) if path.is_file() else None


def _kind(dtype: Any, n_unique: int, n_rows: int) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype) and n_rows and n_unique >= 0.95 * n_rows:
        return "id"  # an integer that (approximately) never repeats: a row key, not a measurement
    if pd.api.types.is_numeric_dtype(dtype):
        return "constant" if n_unique <= 1 else "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if n_unique <= 1:
        return "constant"
    return "id" if n_rows and n_unique >= 0.95 * n_rows else "categorical"


def profile_on_dask(ctx: ToolContext, target: str | None, reason: str) -> ToolOutput:
    from dsagent.tools.dask_train import read_frame

    path = Path(ctx.data_path)
    ctx.report("profiling on the cluster", 0.1)
    with connect(ctx.cluster) as client:
        ddf = read_frame(path)
        names = [str(c) for c in ddf.columns]
        if target and target not in names:
            import difflib

            close = difflib.get_close_matches(target, names, n=3, cutoff=0.6)
            raise ToolError(f"target {target!r} is not a column of {path.name}"
                            + (f"; did you mean {' or '.join(map(repr, close))}?" if close else f"; columns: {', '.join(names[:15])}"))
        numeric = [c for c, t in ddf.dtypes.items() if pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t)]
        work = {"rows": ddf.shape[0], "missing": ddf.isna().sum(), **{("unique", c): ddf[c].nunique_approx() for c in ddf.columns}}
        if numeric:
            work["quantiles"] = ddf[numeric].quantile(list(QUANTILES))
            work["mean"], work["min"], work["max"] = ddf[numeric].mean(), ddf[numeric].min(), ddf[numeric].max()
        # Exact class counts of the target. A float target may have millions of values: counted only when
        # its approximate distinct count says it is a class label (a second pass, then).
        counts = ddf[target].value_counts(dropna=True, split_out=1).nlargest(MAX_CLASSES + 1)  # few values: no shuffle if target else None
        if target and not pd.api.types.is_float_dtype(ddf[target].dtype):
            work["target_counts"] = counts
        keys = list(work)
        found = dict(zip(keys, client.compute([work[k] for k in keys], sync=True)))
        if target and "target_counts" not in found and found[("unique", target)] <= MAX_CLASSES:
            found["target_counts"] = client.compute(counts, sync=True)
        partitions = ddf.npartitions
    n = int(found["rows"])
    columns = []
    for name, dtype in ddf.dtypes.items():
        n_unique = int(round(found[("unique", name)]))
        entry: dict[str, Any] = {"name": str(name), "dtype": str(dtype), "kind": _kind(dtype, n_unique, n),
                                 "missing": int(found["missing"][name]), "missing_frac": float(found["missing"][name]) / max(n, 1),
                                 "n_unique": n_unique, "n_unique_approx": True}
        if name in numeric:
            q = found["quantiles"][name]
            entry.update({"min": float(found["min"][name]), "max": float(found["max"][name]), "mean": float(found["mean"][name]),
                          "quantiles_approx": {f"{p:g}": float(q.loc[p]) for p in QUANTILES}})
        columns.append(entry)
    record: dict[str, Any] = {
        "engine": "dask", "why_dask": reason, "partitions": partitions, "n_rows": n, "n_cols": len(columns),
        "columns": columns, "kind_counts": pd.Series([c["kind"] for c in columns]).value_counts().to_dict(),
        "approximate": APPROXIMATE, "exact": ["n_rows", "missing", "target class counts"], "not_computed": NOT_COMPUTED,
        "load": {"format": "parquet parts" if path.is_dir() else path.suffix.lstrip(".").lower(), "notes": [reason]},
        "warnings": [], "leakage_suspects": [], "drop_suggestions": [], "duplicate_columns": [], "duplicate_rows": None,
    }
    if target:
        counts = found.get("target_counts")
        is_class = counts is not None and (len(counts) <= MAX_CLASSES or not pd.api.types.is_numeric_dtype(ddf[target].dtype))
        t: dict[str, Any] = {"name": target, "n_missing": int(found["missing"][target])}
        if is_class:
            t.update(task="binary" if len(counts) == 2 else "multiclass", n_classes=int(len(counts)),
                     class_counts={str(k): int(v) for k, v in counts.items()},
                     minority_frac=float(counts.min()) / max(float(counts.sum()), 1.0))
        else:
            q = found["quantiles"][target]
            t.update(task="regression", min=float(found["min"][target]), median=float(q.loc[0.5]),
                     max=float(found["max"][target]), median_approx=True)
        record["target"] = t
    out = Path(ctx.artifacts_dir) / "profile.json"
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    os.replace(tmp, out)
    missing = sorted((c for c in columns if c["missing"]), key=lambda c: -c["missing_frac"])[:8]
    summary = {"shape": [n, len(columns)], "engine": f"Dask, {partitions} partition(s): {reason}",
               "kinds": record["kind_counts"], "most_missing": {c["name"]: round(c["missing_frac"], 3) for c in missing},
               "target": record.get("target"), "approximate": "quantiles and distinct counts are approximate; counts are exact",
               "not_computed": NOT_COMPUTED, "full_profile": "profile.json"}
    ctx.report("profile saved", 1.0)
    return ToolOutput(summary=summary, record=record, files={"profile": "profile.json"})
