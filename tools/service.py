"""The model behind `dsagent serve`: loaded once, scoring request bodies the way `dsagent predict`
scores files, and logging what it served.

The web layer (dsagent/serve.py) hands over raw bytes and gets plain JSON-ready data back, so all
pandas and scikit-learn work stays here. Same semantics as `dsagent predict`: the same loader
(tools/data.py), the same safe model loader (tools/model_io.py), the same schema checks and
warnings and the same output columns (tools/serving.py).

When the model raises on a batch (not a schema problem, which is the caller's to fix), the batch
is scored row by row and each row the model cannot score gets the fallback answer: the answers
key `fallback` of the session (tools/fallback.py), or null when there is none; either way such
rows are counted and listed.

Versions: a session's server answers with one version of its model (`--version`, else the
active one) and `switch()` moves it to another while it runs. The model and its manifest are
one immutable pair replaced by a single assignment; each request takes the pair once, so a
request that started on v1 finishes on v1 and none is dropped or sees a mix of the two.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pandas as pd

from dsagent.tools.data import load_bytes
from dsagent.tools.fallback import normalize as normalize_fallback
from dsagent.tools.model_io import load_model, resolve_model_path, session_meta
from dsagent.tools.registry import ToolError
from dsagent.tools.serving import check_schema, score_rows
from dsagent.tools.shadow import Shadow, same_contract
from dsagent.tools.task_types import model_task_type
from dsagent.tools import versions
from dsagent.tools.traffic import MODEL_VERSION, REQUEST, SERVED_AT, TrafficLog, now_utc, traffic_dir


class SwitchRefused(ToolError):
    pass


class Loaded:
    """One version of the model: file, fitted pipeline, manifest (never mutated once built)."""

    def __init__(self, path: Path):
        self.path = path
        self.model, self.manifest = load_model(path)
        self.name = versions.name_of(path)
        from dsagent.tools.text_embed import warm_up

        warm_up(self.model)  # a model that embeds text loads its embedding model now, not on the first request


def open_served(ref: str | Path, *, log: bool = True, version: str | None = None, shadow: str | None = None):
    """The model `dsagent serve` answers with: the model's task type says whether it can be served and
    with which class (a forecast: tools/forecast/service.py, POST /forecast), else ServedModel (POST /predict)."""
    tt = model_task_type(ref, version)
    if (problem := tt.serve_problem()) is not None:
        raise ToolError(problem)
    return (tt.served_class() or ServedModel)(ref, log=log, version=version, shadow=shadow)


class ServedModel:
    def __init__(self, ref: str | Path, *, log: bool = True, log_flush_seconds: float = 2.0,
                 version: str | None = None, shadow: str | None = None):
        self.ref = ref
        self._loaded = Loaded(resolve_model_path(ref, version))
        self.model_path = self._loaded.path
        self.session = session_meta(self.model_path)
        answers = self.session.get("answers") or {}
        self.fallback, self.fallback_note = normalize_fallback(answers.get("fallback"), self.manifest.get("task"),
                                                               self.manifest.get("classes"))
        # Columns kept in the log beside the features, so labels can be joined later.
        self.keep = [c for c in (answers.get("id_columns") or []) if isinstance(c, str)] + [self.manifest.get("target")]
        self.log = TrafficLog(traffic_dir(self.model_path), flush_seconds=log_flush_seconds) if log else None
        self._requests = itertools.count(1)
        self._background: pd.DataFrame | None = None
        if shadow and self.log is None:
            raise ToolError("--shadow logs the shadow's predictions beside the champion's: it needs the traffic log "
                            "(drop --no-log)")
        self.shadow = Shadow(ref, shadow, self.manifest) if shadow else None

    # The pair is read once per request (see the module docstring); these are for everything else.
    @property
    def model(self):
        return self._loaded.model

    @model.setter
    def model(self, value) -> None:  # tests put a model that fails on some rows in place
        loaded = object.__new__(Loaded)
        loaded.__dict__.update(self._loaded.__dict__, model=value)
        self._loaded = loaded

    @property
    def manifest(self) -> dict[str, Any]:
        return self._loaded.manifest

    @property
    def model_version(self) -> str | None:
        """The session's version name (v1, v2, ...) of the model answering now."""
        return self._loaded.name

    def switch(self, name: str) -> dict[str, Any]:
        """Answer with version `name` from the next request on (in-flight requests finish on the
        version they started with). Refused when the new version would change what callers get
        back (task, target, classes): that needs a new deployment, not a switch."""
        folder = versions.model_dir(self.ref)
        if folder is None:
            raise SwitchRefused("this server was started on a model file, not a session: it has no versions to switch to")
        new = Loaded(versions.version_file(folder, name))
        try:
            same_contract(new.manifest, self._loaded.manifest, name, f"serve it with a new `dsagent serve --version {name}`")
        except ToolError as exc:
            raise SwitchRefused(str(exc)) from None
        before = self._loaded.name
        self._background = None  # the next version may read other columns
        self._loaded = new
        self.model_path = new.path
        return {"from": before, "to": new.name, "model": new.manifest.get("model"), "sha256": new.manifest.get("sha256")}

    @property
    def version(self) -> str:
        """The model file's sha256, shortened: changes whenever the served model does."""
        return str(self.manifest.get("sha256", ""))[:12]

    def metadata(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "model": m.get("model"), "family": m.get("family"), "version": self.version,
            "model_version": self.model_version, "task": m.get("task"),
            "metric": m.get("metric"), "target": m.get("target"), "classes": m.get("classes"),
            "threshold": m.get("threshold"), "input_schema": m.get("input_schema"),
            "training_data_sha256": self.session.get("data_sha256"), "session": self.session.get("id"),
            "model_sha256": m.get("sha256"), "library_versions": m.get("versions"),
            "output_columns": ["prediction"] + [f"proba_{c}" for c in m.get("classes") or []],
            "fallback": self.fallback, "fallback_note": self.fallback_note,
            "shadow": self.shadow.name if self.shadow else None, "traffic_log": str(self.log.directory) if self.log else None,
        }

    def score(self, body: bytes, fmt: str, explain: bool = False) -> dict[str, Any]:
        """Score a CSV or JSON body (and explain each row when asked). Bad input raises ToolError
        (a one-line reason for a 4xx)."""
        loaded = self._loaded  # one version for the whole request, whatever a switch does meanwhile
        data, _info = load_bytes(body, "the request body", fmt)
        warnings: list[str] = []
        X = check_schema(loaded.manifest, data, warnings.append)
        preds, failed = self._score_with_fallback(loaded, X)
        if self.shadow is not None:  # logged when the shadow has scored the same rows, off the request's path
            self.shadow.submit(data, lambda extra: self._log(loaded, data, X, preds, extra))
        elif self.log is not None:
            self._log(loaded, data, X, preds)
        extra: dict[str, Any] = {}
        if explain:
            extra = self._explain(loaded, X)
        # The records stay JSON text: decoding them here only for the web layer to encode them
        # again took most of the time of a 1,000-row request.
        return {"rows": len(preds), "predictions_json": preds.to_json(orient="records", double_precision=15),
                "warnings": warnings, "fallback_rows": failed, "model": loaded.manifest.get("model"),
                "version": str(loaded.manifest.get("sha256", ""))[:12], "model_version": loaded.name,
                "labels": preds["prediction"].tolist(), **extra}

    def _explain(self, loaded: Loaded, X: pd.DataFrame) -> dict[str, Any]:
        from dsagent.tools.contributions import background_rows, explain_rows

        if self._background is None:  # read once: the training rows the model-agnostic method compares with
            self._background = background_rows(self.session, loaded.manifest)
            if self._background is None:
                self._background = X.iloc[:0]
        frame, info = explain_rows(loaded.model, loaded.manifest, X, self._background)
        return {"explanation": info, "explanations": json.loads(frame.to_json(orient="records", double_precision=15))}

    def _score_with_fallback(self, loaded: Loaded, X: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
        try:
            return score_rows(loaded.model, loaded.manifest, X), []
        except ToolError:
            raise
        except Exception:  # one row the model chokes on must not fail the rest of the batch
            pass
        parts, failed = [], []
        for i in range(len(X)):
            try:
                parts.append(score_rows(loaded.model, loaded.manifest, X.iloc[[i]]))
            except Exception:
                failed.append(i)
                row = pd.DataFrame({"prediction": [self.fallback]}, index=X.index[[i]])
                for c in loaded.manifest.get("classes") or []:
                    row[f"proba_{c}"] = float("nan")
                parts.append(row)
        return pd.concat(parts), failed

    def _log(self, loaded: Loaded, data: pd.DataFrame, X: pd.DataFrame, preds: pd.DataFrame,
             extra: pd.DataFrame | None = None) -> None:
        # When and which request: taken now. The frame: assembled at the log's next flush, off the
        # request's path (it was a tenth of a single-row request's time; see docs/BENCHMARKS.md).
        served_at, request, version = now_utc(), next(self._requests), loaded.name or ""

        def build() -> pd.DataFrame:
            kept = [c for c in dict.fromkeys(self.keep) if c and c in data.columns and c not in X.columns]
            frame = pd.concat([X, data[kept], preds], axis=1).reset_index(drop=True)
            if extra is not None:
                frame = pd.concat([frame, extra], axis=1)
            frame.insert(0, MODEL_VERSION, version)
            frame.insert(0, REQUEST, request)
            frame.insert(0, SERVED_AT, served_at)
            return frame

        self.log.append(build, n_rows=len(X))
