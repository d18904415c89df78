"""`dsagent predict SESSION [HISTORY] [--horizon N]` for a forecast: load the saved model (skops, the
trusted-types check of model_io), optionally extend its history with a file, write one row per series
and step. Tabular models never reach here: the manifest's `task` decides."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dsagent.tools.forecast.frequency import ForecastDataError
from dsagent.tools.forecast.task import MODEL_KIND, predict_from_history


def check_history(model: dict[str, Any], frame, name: str) -> None:
    """A history (a file, a request body) carries the columns a forecast reads, or ForecastDataError."""
    spec = model["spec"]
    known = spec.get("known_future_columns") or []
    missing = [c for c in [spec["time_column"], spec["target"], *spec["series_columns"], *known] if c not in frame.columns]
    if missing:
        raise ForecastDataError(f"{name} lacks column(s) {', '.join(map(repr, missing))}; it needs the time "
                                "column, the target, the series columns" + (" and the known-future columns" if known else ""))


def predict_forecast(ref: str | Path, history: Path | None, horizon: int | None, out: Path | None) -> dict[str, Any]:
    """Writes CSV to `out` (stdout when None); returns what was written."""
    import sys

    from dsagent.tools.data import load_table
    from dsagent.tools.model_io import load_model
    from dsagent.tools.serving import escape_cells, write_csv_atomic

    model, _ = load_model(ref)
    if not isinstance(model, dict) or model.get("kind") != MODEL_KIND:
        raise ForecastDataError("this model file is not a dsagent forecast; re-run `dsagent run` with task: forecast")
    frame = None
    if history is not None:
        frame, _ = load_table(history)
        check_history(model, frame, "the history file")
    pred = predict_from_history(model, frame, horizon)
    if out is None:
        escape_cells(pred).to_csv(sys.stdout, index=False)
    else:
        write_csv_atomic(pred, Path(out))
    return {"rows": int(len(pred)), "out": str(out) if out else "-", "horizon": int(horizon or model["spec"]["horizon"])}
