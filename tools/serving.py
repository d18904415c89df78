"""Predicting with a saved model on raw rows: schema checks, one output row per input row, in order.

The manifest's input schema decides what the data must look like: a missing column is an error
that names it; extra columns are ignored with a warning; numeric columns that arrive as text are
coerced (unparseable cells become missing, with a warning); unseen categories are counted in a
warning and handled by the Pipeline's encoders (they never crash a prediction).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from dsagent.tools.registry import ToolError
from dsagent.tools.task_types import fits_own_models, prediction_of

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _numeric_dtype(name: str) -> bool:
    return name.startswith(("int", "uint", "float", "Int", "UInt", "Float"))


def check_schema(manifest: dict[str, Any], data: pd.DataFrame, warn: Callable[[str], None]) -> pd.DataFrame:
    """The model's input columns from `data`, in training order, with dtypes made compatible."""
    columns = manifest["input_schema"]["columns"]
    expected = [c["name"] for c in columns]
    missing = [c for c in expected if c not in data.columns]
    if missing:
        raise ToolError(f"the data lacks {len(missing)} column(s) the model needs: {', '.join(map(repr, missing[:10]))}"
                        f"{' ...' if len(missing) > 10 else ''}; add them (empty values are allowed)")
    ignored = [c for c in data.columns if c not in expected and c != manifest.get("target")]
    if ignored:
        warn(f"ignoring {len(ignored)} column(s) the model does not use: {', '.join(map(str, ignored[:8]))}"
             f"{' ...' if len(ignored) > 8 else ''}")
    X = data[expected].copy()
    for spec in columns:
        name = spec["name"]
        if _numeric_dtype(spec["dtype"]) and not pd.api.types.is_numeric_dtype(X[name]):
            before = X[name].notna()
            X[name] = pd.to_numeric(X[name], errors="coerce")
            bad = int((before & X[name].isna()).sum())
            if bad:
                warn(f"column {name!r}: {bad} value(s) are not numbers and are treated as missing")
        elif spec.get("categories") is not None and spec.get("n_categories", 0) <= len(spec["categories"]):
            seen = set(spec["categories"])
            values = X[name].dropna().astype(str)
            unseen = values[~values.isin(seen)]
            if len(unseen):
                examples = ", ".join(repr(v if len(v) <= 40 else v[:40] + "...") for v in unseen.unique()[:3])
                warn(f"column {name!r}: {len(unseen)} row(s) with categories not seen in training ({examples}); "
                     "the model treats them as unknown")
    return X


def predict_frame(model, manifest: dict[str, Any], data: pd.DataFrame, warn: Callable[[str], None] = print) -> pd.DataFrame:
    """`prediction` per row (and `proba_<class>` per class for classifiers), same index and order."""
    return score_rows(model, manifest, check_schema(manifest, data, warn))


def score_rows(model, manifest: dict[str, Any], X: pd.DataFrame) -> pd.DataFrame:
    """The model's answers for rows already through `check_schema` (the server calls the two
    apart: it logs the checked rows and scores a failing batch row by row)."""
    if (own := fits_own_models(manifest["task"])) is not None:  # work without a target: its task type predicts
        return own.predict(model, manifest, X)
    out = pd.DataFrame(index=X.index)
    if len(X) == 0:
        out["prediction"] = pd.Series(dtype=float if prediction_of(manifest["task"]) == "regression" else object)
        for c in manifest.get("classes") or []:
            out[f"proba_{c}"] = pd.Series(dtype=float)
        return out
    if prediction_of(manifest["task"]) == "regression":
        out["prediction"] = np.asarray(model.predict(X), dtype=float)
        return out
    classes = manifest["classes"]
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if prediction_of(manifest["task"]) == "binary" and manifest.get("threshold") is not None:
        idx = (proba[:, 1] >= manifest["threshold"]).astype(int)
    else:
        idx = proba.argmax(axis=1)
    # One constructor call, not a column insert per class: each insert cost ~0.15 ms, a few % of a
    # single-row request (docs/BENCHMARKS.md); same columns, order and dtypes.
    cols: dict[str, Any] = {"prediction": [classes[i] for i in idx]}
    cols.update({f"proba_{c}": proba[:, i] for i, c in enumerate(classes)})
    return pd.DataFrame(cols, index=X.index)


def _is_number_text(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _escape(v: Any) -> Any:
    if not isinstance(v, str) or not v.startswith(FORMULA_START):
        return v
    if v[0] in "+-" and _is_number_text(v):  # "-1.5" is a number written as text, not a formula
        return v
    return "'" + v


def escape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Spreadsheet formula-injection guard: string cells starting with = + - @ (or tab/CR) get a
    leading quote. Numbers, and strings that are plain numbers such as "-1", are never touched."""
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(_escape).astype(object)
    safe.columns = [_escape(c) for c in safe.columns]
    return safe


def write_csv_atomic(frame: pd.DataFrame, out_path: Path) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    try:
        escape_cells(frame).to_csv(tmp, index=False)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def predict_file(model_ref: str | Path, data_path: str | Path, out_path: str | Path,
                 warn: Callable[[str], None] = print, version: str | None = None) -> dict[str, Any]:
    from dsagent.tools.data import load_table
    from dsagent.tools.model_io import load_model

    model, manifest = load_model(model_ref, version)
    data, _info = load_table(data_path)
    preds = predict_frame(model, manifest, data, warn)
    write_csv_atomic(preds, Path(out_path))
    return {"rows": len(preds), "columns": list(preds.columns), "out": str(out_path), "model": manifest.get("model"),
            "task": manifest.get("task")}
