"""A forecast model behind `dsagent serve`: POST /forecast answers what `dsagent predict SESSION
[HISTORY] --horizon N` writes, one record per series and step after each series' history.

A forecast is not one answer per posted row, so the tabular POST /predict does not apply. The
request may carry recent history (CSV or JSON records with the time, target and series columns,
and for a model with known-future columns the rows of the horizon with those filled and the target
empty), which extends the history the model saved; with no body the saved history is forecast.
`?horizon=N` asks for fewer steps than the trained horizon (never more: the model and its
intervals were backtested for that horizon only); `?series=ID` (repeatable) keeps some series.

Versions switch as for a tabular model (ServedModel.switch). No traffic log and no shadow: both
are made of scored rows, which a forecast does not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsagent.tools.data import load_bytes
from dsagent.tools.forecast.frequency import ForecastDataError, series_ids
from dsagent.tools.forecast.predict import check_history
from dsagent.tools.forecast.task import MODEL_KIND, predict_from_history
from dsagent.tools.model_io import resolve_model_path, session_meta
from dsagent.tools.registry import ToolError
from dsagent.tools.service import Loaded, ServedModel


def parse_horizon(text: str | None, trained: int) -> int:
    """The steps asked for (the trained horizon when not given), or ToolError with what to send."""
    if text in (None, ""):
        return trained
    try:
        h = int(str(text))
    except ValueError:
        raise ToolError(f"horizon {text!r} is not a whole number of steps; send ?horizon=1 to {trained}") from None
    if h < 1:
        raise ToolError(f"horizon must be a positive number of steps, not {h}; send ?horizon=1 to {trained}")
    return h


class ForecastService(ServedModel):
    routes = ("/forecast",)  # agent/serve.py adds these instead of POST /predict

    def __init__(self, ref: str | Path, *, log: bool = True, version: str | None = None, shadow: str | None = None):
        if shadow:
            raise ToolError("--shadow compares the predictions of posted rows; a forecast server has none: drop --shadow")
        self.ref = ref
        self._loaded = Loaded(resolve_model_path(ref, version))
        if not isinstance(self.model, dict) or self.model.get("kind") != MODEL_KIND:
            raise ToolError("this model file is not a dsagent forecast; re-run `dsagent run` with task: forecast")
        self.model_path = self._loaded.path
        self.session = session_meta(self.model_path)
        self.log, self.shadow, self._background = None, None, None

    @property
    def manifest(self) -> dict[str, Any]:
        m = self._loaded.manifest  # a forecast's manifest names its model "model_name"
        return m if m.get("model") else {**m, "model": m.get("model_name")}

    def metadata(self) -> dict[str, Any]:
        m, spec = self.manifest, self.model["spec"]
        return {"model": m.get("model"), "version": self.version, "model_version": self.model_version, "task": "forecast",
                "metric": "mase", "target": spec["target"], "time_column": spec["time_column"],
                "series_columns": spec["series_columns"], "horizon": spec["horizon"], "frequency": self.model["freq"],
                "known_future_columns": spec.get("known_future_columns") or [], "series": sorted(self.model["history"]),
                "output_columns": [spec["time_column"], *spec["series_columns"], *m.get("predict_columns", [])],
                "training_data_sha256": self.session.get("data_sha256"), "session": self.session.get("id"),
                "model_sha256": m.get("sha256"), "library_versions": m.get("versions"), "traffic_log": None}

    def score(self, body: bytes, fmt: str, explain: bool = False) -> dict[str, Any]:
        raise ToolError("this server serves a forecast: POST /forecast?horizon=N (with recent history as the body, "
                        "or none for the saved history), not /predict")

    def forecast(self, body: bytes, fmt: str | None, horizon: str | None = None,
                 series: list[str] | None = None) -> dict[str, Any]:
        """The forecast records for a request; bad input raises ToolError (a one-line reason for a 422)."""
        loaded = self._loaded  # one version for the whole request
        model, spec = loaded.model, loaded.model["spec"]
        h = parse_horizon(horizon, int(spec["horizon"]))
        frame = None
        if body.strip():
            frame, _ = load_bytes(body, "the request body", fmt or "csv")
            check_history(model, frame, "the request body")
        pred = predict_from_history(model, frame, h)
        if series:
            ids = series_ids(pred, spec["series_columns"])
            unknown = sorted(set(series) - set(ids))
            if unknown:
                known = sorted(set(ids))
                raise ForecastDataError(f"unknown series {', '.join(map(repr, unknown[:5]))}; this model forecasts "
                                        f"{', '.join(map(repr, known[:10]))}{' ...' if len(known) > 10 else ''}")
            pred = pred[ids.isin(series).to_numpy()]
        pred[spec["time_column"]] = pred[spec["time_column"]].astype(str)
        return {"rows": int(len(pred)), "horizon": h, "model": loaded.manifest.get("model_name"),
                "version": str(loaded.manifest.get("sha256", ""))[:12], "model_version": loaded.name,
                "forecasts_json": pred.to_json(orient="records", double_precision=15),
                "labels": pred["prediction"].tolist()}
