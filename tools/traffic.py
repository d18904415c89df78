"""The traffic log of `dsagent serve`: every scored row and its prediction, as Parquet parts.

Parquet files cannot be appended to, so rows are buffered and written as a new part file every
few seconds (or every `flush_rows` rows, and at shutdown). Each part is written to a temporary
name and renamed, so a reader never sees half a file. Rotation is by size: when the parts
together exceed `max_bytes`, the oldest are deleted. Part names start with the UTC time they were
written, so sorting names sorts time; the pid keeps several server workers apart.

`dsagent monitor SESSION --from-log` reads the parts back (`read_traffic`) and checks drift on
what was actually served.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from dsagent.tools import paths
from dsagent.tools.data import DataError

SERVED_AT = "_served_at"  # UTC time the request was scored
REQUEST = "_request"  # request number within one server process, to group rows of a batch
MODEL_VERSION = "_model_version"  # which version of the session's model answered (tools/versions.py)
LOG_COLUMNS = (SERVED_AT, REQUEST, MODEL_VERSION)
# A shadow version's columns beside the champion's (serve --shadow, tools/shadow.py).
PREFIX = "shadow_"  # shadow_prediction, shadow_proba_<class>, shadow_segment, ...
SHADOW_VERSION = "_shadow_version"
SHADOW_ERROR = "_shadow_error"


def traffic_dir(model_path: Path) -> Path:
    """Where the log of a model lives: the session's artifacts/traffic for a session's model,
    otherwise a traffic/ folder beside the model file."""
    folder = Path(model_path).resolve().parent
    if folder.name[:1] == "v" and folder.name[1:].isdigit() and folder.parent.name == "model":
        folder = folder.parent  # model/v2/model.skops: one log per session, whatever the version
    base = folder.parent if folder.parent.name == "artifacts" else folder
    return base / paths.TRAFFIC


class TrafficLog:
    def __init__(self, directory: Path, *, flush_rows: int = 20_000, flush_seconds: float = 2.0,
                 max_bytes: int = 256 << 20):
        self.directory = Path(directory)
        self.flush_rows, self.flush_seconds, self.max_bytes = flush_rows, flush_seconds, max_bytes
        self._buffer: list[pd.DataFrame | Callable[[], pd.DataFrame]] = []
        self._rows = 0
        self._seq = 0
        self._lock = threading.Lock()  # requests are scored in a thread pool
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def append(self, frame: pd.DataFrame | Callable[[], pd.DataFrame], n_rows: int | None = None) -> None:
        """Buffer rows: a frame, or a function that builds one (with its row count), so that a
        request pays for appending, not for assembling its log frame; the flush builds it."""
        with self._lock:
            self._buffer.append(frame)
            self._rows += len(frame) if n_rows is None else n_rows
            if self._rows >= self.flush_rows:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def start(self) -> None:
        """Flush every `flush_seconds` in a background thread, so an idle server's last
        requests reach the disk too."""
        def loop() -> None:
            while not self._stop.wait(self.flush_seconds):
                self.flush()

        self._thread = threading.Thread(target=loop, name="traffic-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _flush_locked(self) -> None:
        if not self._buffer:
            return
        frame = pd.concat([part() if callable(part) else part for part in self._buffer], ignore_index=True)
        self._buffer, self._rows = [], 0
        # One dtype per column across parts: text stays text even when a part's values look numeric.
        for col in frame.columns:
            if frame[col].dtype == object:
                frame[col] = frame[col].astype("str").where(frame[col].notna(), None)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        final = self.directory / f"served-{stamp}-{os.getpid()}-{self._seq:05d}.parquet"
        tmp = final.with_name(f".{final.name}.tmp")
        try:
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        self._rotate()

    def _rotate(self) -> None:
        parts = sorted(self.directory.glob("served-*.parquet"))
        sizes = [p.stat().st_size for p in parts]
        total = sum(sizes)
        for part, size in zip(parts[:-1], sizes[:-1]):  # never the part just written
            if total <= self.max_bytes:
                break
            part.unlink(missing_ok=True)
            total -= size


def parse_since(text: str | None) -> pd.Timestamp | None:
    """An ISO date or time; without a zone it is UTC (the log's clock)."""
    if not text:
        return None
    try:
        ts = pd.Timestamp(datetime.fromisoformat(text))
    except ValueError:
        raise DataError(f"--since {text!r} is not an ISO date or time; use e.g. 2025-06-01 or 2025-06-01T14:30") from None
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def read_traffic(directory: Path, since: pd.Timestamp | None = None) -> pd.DataFrame:
    """Every logged row (served at or after `since`), oldest first."""
    parts = sorted(Path(directory).glob("served-*.parquet"))
    frames = [pd.read_parquet(p) for p in parts]
    frames = [f for f in frames if len(f)]
    if not frames:
        raise DataError(f"no served traffic is logged in {directory}; serve the model with `dsagent serve` "
                        "(without --no-log) first")
    data = pd.concat(frames, ignore_index=True)
    if since is not None:
        data = data[pd.to_datetime(data[SERVED_AT], utc=True) >= since].reset_index(drop=True)
        if data.empty:
            raise DataError(f"no served traffic logged since {since.isoformat()}; pick an earlier --since")
    return data


def served_rows(model_ref: str | Path, since: str | None = None) -> pd.DataFrame:
    """The logged inputs (and labels, when requests carried them) of a model, without the log's
    own columns and the served predictions: what `dsagent monitor` checks like a new batch."""
    import json

    from dsagent.tools.model_io import MANIFEST, resolve_model_path

    model_path = resolve_model_path(model_ref)
    data = read_traffic(traffic_dir(model_path), parse_since(since))
    try:
        classes = json.loads(model_path.with_name(MANIFEST).read_text(encoding="utf-8")).get("classes") or []
    except (OSError, ValueError):
        classes = []
    served = {*LOG_COLUMNS, SHADOW_VERSION, SHADOW_ERROR, "prediction", *(f"proba_{c}" for c in classes)}
    return data.drop(columns=[c for c in data.columns if c in served or str(c).startswith(PREFIX)])


def now_utc() -> pd.Timestamp:
    return pd.Timestamp(time.time_ns(), unit="ns", tz="UTC")
