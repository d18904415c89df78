"""Predicting with a saved model on raw rows: schema checks, one output row per input row."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from tools.registry import ToolError

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def check_schema(manifest: dict[str, Any], data: pd.DataFrame, warn: Callable[[str], None]) -> pd.DataFrame:
    expected = [c["name"] for c in manifest["input_schema"]["columns"]]
    missing = [c for c in expected if c not in data.columns]
    if missing:
        raise ToolError(f"the data lacks column(s) the model needs: {', '.join(missing[:10])}"
                        f"{' ...' if len(missing) > 10 else ''}; add them (empty values are allowed)")
    ignored = [c for c in data.columns if c not in expected and c != manifest.get("target")]
    if ignored:
        warn(f"ignoring {len(ignored)} column(s) the model does not use: {', '.join(map(str, ignored[:8]))}")
    return data[expected]


def predict_frame(model, manifest: dict[str, Any], data: pd.DataFrame, warn: Callable[[str], None] = print) -> pd.DataFrame:
    X = check_schema(manifest, data, warn)
    out = pd.DataFrame(index=data.index)
    if manifest["task"] == "regression":
        out["prediction"] = np.asarray(model.predict(X), dtype=float)
        return out
    classes = manifest["classes"]
    proba = np.asarray(model.predict_proba(X), dtype=float)
    if manifest["task"] == "binary" and manifest.get("threshold") is not None:
        idx = (proba[:, 1] >= manifest["threshold"]).astype(int)
    else:
        idx = proba.argmax(axis=1)
    out["prediction"] = [classes[i] for i in idx]
    for i, c in enumerate(classes):
        out[f"proba_{c}"] = proba[:, i]
    return out


def escape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """Spreadsheet formula injection guard: string cells starting with = + - @ get a leading quote.
    Numbers are never touched."""
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_START) else v)
    safe.columns = ["'" + c if isinstance(c, str) and c.startswith(FORMULA_START) else c for c in safe.columns]
    return safe


def write_csv_atomic(frame: pd.DataFrame, out_path: Path) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    escape_cells(frame).to_csv(tmp, index=False)
    os.replace(tmp, out_path)


def predict_file(model_ref: str | Path, data_path: str | Path, out_path: str | Path,
                 warn: Callable[[str], None] = print) -> dict[str, Any]:
    from tools.data import load_table
    from tools.model_io import load_model

    model, manifest = load_model(model_ref)
    data, _info = load_table(data_path)
    preds = predict_frame(model, manifest, data, warn)
    write_csv_atomic(preds, Path(out_path))
    return {"rows": len(preds), "columns": list(preds.columns), "out": str(out_path)}
