"""A finished session's model after training: predict, explain, monitor, retrain.

One implementation for the MCP server and the Python API (the CLI calls the same tools
functions): each takes a session directory and a data file or DataFrame and returns JSON-ready
data. The ML work lives in dsagent.tools (imported when called, so importing this stays light).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MAX_RECORDS = 5_000  # rows returned inline to an MCP client; more are counted, not sent


def _frame(data: Any):
    """A DataFrame from a path or a DataFrame."""
    if isinstance(data, (str, Path)):
        from dsagent.tools.data import load_table

        return load_table(data)[0]
    return data


def _records(frame, limit: int | None) -> tuple[list[dict[str, Any]], bool]:
    import json

    cut = frame if limit is None else frame.iloc[:limit]
    return json.loads(cut.to_json(orient="records", double_precision=15)), limit is not None and len(frame) > limit


def predict_table(session: Path, data: Any, version: str | None = None):
    """(predictions DataFrame, warnings, manifest): `dsagent predict` on a frame."""
    from dsagent.tools.model_io import load_model
    from dsagent.tools.serving import predict_frame

    model, manifest = load_model(session, version)
    warnings: list[str] = []
    return predict_frame(model, manifest, _frame(data), warnings.append).reset_index(drop=True), warnings, manifest


def explain_table(session: Path, data: Any, version: str | None = None):
    """(predictions and contributions DataFrame, method info, warnings): `dsagent explain`."""
    from dsagent.tools.contributions import explain_frame

    warnings: list[str] = []
    frame, info = explain_frame(session, _frame(data), version=version, warn=warnings.append)
    return frame, info, warnings


def predict(session: Path, data: Any, version: str | None = None, limit: int | None = MAX_RECORDS) -> dict[str, Any]:
    from dsagent.tools import versions

    frame, warnings, manifest = predict_table(session, data, version)
    records, truncated = _records(frame, limit)
    return {"rows": len(frame), "columns": list(frame.columns), "predictions": records, "truncated": truncated,
            "warnings": warnings, "model": manifest.get("model"),
            "model_version": version or versions.active(versions.model_dir(session) or Path(session))}


def explain(session: Path, data: Any, version: str | None = None, limit: int | None = MAX_RECORDS) -> dict[str, Any]:
    frame, info, warnings = explain_table(session, data, version)
    records, truncated = _records(frame, limit)
    return {"rows": len(frame), **info, "explanations": records, "truncated": truncated, "warnings": warnings}


def monitor(session: Path, data: Any = None, *, from_log: bool = False, since: str | None = None,
            version: str | None = None) -> dict[str, Any]:
    """`dsagent monitor`: drift, data quality and (with labels) performance; `verdict` and
    `exit_code` (0 ok, 3 investigate, 4 retrain) say what to do."""
    from dsagent.answers import BadInput
    from dsagent.tools.monitor import VERDICT_EXIT, apply_plan

    if from_log == (data is not None):
        raise BadInput("monitor needs either data or from_log=True (not both)")
    if from_log:
        from dsagent.tools.traffic import served_rows

        frame = served_rows(session, since)
    else:
        frame = _frame(data)
    report = apply_plan(str(session), frame, version=version)
    return {**report, "exit_code": VERDICT_EXIT[report["verdict"]]}


def retrain(session: Path, data: Path, *, time_budget: float | None = None, seed: int = 0) -> dict[str, Any]:
    """`dsagent retrain`: status "promoted" (exit_code 0) or "kept" (5); both versions stay."""
    from dsagent.tools.retrain import PROMOTED, retrain as run

    result = run(session, data, time_budget=time_budget, seed=seed)
    return {**result, "exit_code": 0 if result["status"] == PROMOTED else 5}
