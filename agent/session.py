"""Sessions on disk: sessions/<id>/ with session.json, transcript.jsonl and artifacts/.

The transcript is append-only, one JSON event per line, flushed as written; a torn last line
(the process was killed mid-write) is detected and dropped on load. session.json is rewritten
atomically (temp file + rename) so a crash never leaves it half-written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterator

from dsagent.answers import BadInput

TRACKED_LIBRARIES = [
    "dsagent", "pandas", "numpy", "scikit-learn", "xgboost", "xgboost-cpu", "optuna", "skops",
    "matplotlib", "nbformat", "nbclient", "anthropic", "pydantic",
]


def default_sessions_dir() -> Path:
    env = os.environ.get("DSAGENT_SESSIONS_DIR")
    return Path(env).expanduser() if env else Path.cwd() / "sessions"


def library_versions() -> dict[str, str]:
    found = {}
    for name in TRACKED_LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def data_files(path: Path) -> list[Path]:
    """The file, or a directory's files (a directory of Parquet parts, --cluster), in a stable order."""
    path = Path(path)
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """A file's sha256; for a directory, one digest over its files' relative names and contents."""
    digest = hashlib.sha256()
    for f in data_files(path):
        if f != Path(path):
            digest.update(str(f.relative_to(path)).encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:24] or "data"


@dataclass
class Session:
    dir: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def artifacts_dir(self) -> Path:
        return self.dir / "artifacts"

    @property
    def transcript_path(self) -> Path:
        return self.dir / "transcript.jsonl"

    @property
    def data_path(self) -> Path | None:
        p = self.meta.get("data_path")
        return Path(p) if p else None

    # -- creation and loading ------------------------------------------------------------
    @classmethod
    def create(
        cls,
        sessions_dir: Path,
        *,
        data_path: Path | None,
        persona: str,
        backend: str,
        model: str | None = None,
        seed: int = 0,
        extra: dict[str, Any] | None = None,
    ) -> "Session":
        sessions_dir = Path(sessions_dir)
        stem = _slug(data_path.stem) if data_path else "chat"
        sid = f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{secrets.token_hex(2)}"
        directory = sessions_dir / sid
        (directory / "artifacts").mkdir(parents=True, exist_ok=False)
        meta: dict[str, Any] = {
            "id": sid,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "status": "running",
            "persona": persona,
            "backend": backend,
            "model": model,
            "seed": seed,
            "versions": library_versions(),
            "usage": {},
        }
        if data_path is not None:
            meta["data_path"] = str(Path(data_path).resolve())
            meta["data_sha256"] = sha256_file(data_path)
            meta["data_bytes"] = sum(f.stat().st_size for f in data_files(data_path))
        meta.update(extra or {})
        session = cls(directory, meta)
        session.save()
        session.transcript_path.touch()
        return session

    @classmethod
    def load(cls, sessions_dir: Path, ref: str) -> "Session":
        """`ref` is a session id, a unique id prefix, or a path to a session directory."""
        candidate = Path(ref).expanduser()
        if (candidate / "session.json").is_file():
            directory = candidate
        else:
            directory = Path(sessions_dir) / ref
            if not (directory / "session.json").is_file():
                matches = sorted(p for p in Path(sessions_dir).glob(f"{ref}*") if (p / "session.json").is_file())
                if len(matches) != 1:
                    hint = "several match" if matches else "no such session"
                    raise BadInput(f"session {ref!r}: {hint} in {sessions_dir}; run `dsagent sessions` to list them")
                directory = matches[0]
        try:
            meta = json.loads((directory / "session.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise BadInput(f"session {directory} has an unreadable session.json ({exc}); it cannot be resumed") from None
        session = cls(directory, meta)
        session.repair_transcript()
        return session

    def repair_transcript(self) -> None:
        """Cut a torn last line (a writer killed mid-line) so new events start on a line of their
        own; the fragment is kept in transcript.torn for the record."""
        path = self.transcript_path
        if not path.exists() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        if data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        with open(self.dir / "transcript.torn", "ab") as fh:
            fh.write(data[cut:] + b"\n")
        with open(path, "r+b") as fh:
            fh.truncate(cut)

    def save(self) -> None:
        atomic_write_text(self.dir / "session.json", json.dumps(self.meta, indent=2, default=str))

    def update(self, **changes: Any) -> None:
        self.meta.update(changes)
        self.save()

    # -- transcript ----------------------------------------------------------------------
    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        event = {"t": round(time.time(), 3), **event}
        line = json.dumps(event, default=str, ensure_ascii=False)
        # One write call per whole line, then flush: a kill leaves at worst one torn last line.
        with open(self.transcript_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
        return event

    def events(self) -> list[dict[str, Any]]:
        return list(read_transcript(self.transcript_path))

    def artifact(self, relative: str) -> Path:
        return self.artifacts_dir / relative


def read_transcript(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if i >= len(lines) - 2:  # torn last line from a killed writer: drop it
                return
            raise BadInput(f"transcript {path} is corrupt at line {i + 1}; the session cannot be resumed") from None


def list_sessions(sessions_dir: Path) -> list[dict[str, Any]]:
    rows = []
    if not Path(sessions_dir).is_dir():
        return rows
    for d in sorted(Path(sessions_dir).iterdir()):
        meta_path = d / "session.json"
        if not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            meta = {"id": d.name, "status": "unreadable"}
        rows.append(meta | {"dir": str(d)})
    return rows
