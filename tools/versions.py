"""Model versions of a session: `model/` keeps every model it ever shipped.

    artifacts/model/model.skops, manifest.json    v1: what `dsagent run` trained (sessions made
                                                   before versions existed look the same)
    artifacts/model/v2/model.skops, manifest.json  v2, v3, ...: what `dsagent retrain` fitted
    artifacts/model/ACTIVE                         the active version's name ("v2"); absent = v1

Training keeps writing the flat v1 (the report, notebook and explain tools read that path), so
nothing written before this module existed needs migrating. The ACTIVE pointer is replaced
atomically, so a reader sees the old name or the new one, never half a file. Predict, serve and
monitor on a session use the active version unless told `--version`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from dsagent.tools import paths
from dsagent.tools.registry import ToolError

MODEL_FILE = Path(paths.MODEL).name  # model.skops
MANIFEST_FILE = Path(paths.MODEL_MANIFEST).name
ACTIVE = "ACTIVE"
NAME = re.compile(r"^v([1-9][0-9]*)$")


class VersionError(ToolError):
    pass


def model_dir(ref: str | Path) -> Path | None:
    """The `model/` directory of a session directory, its artifacts directory or the model
    directory itself; None when `ref` is none of these (a bare .skops file)."""
    p = Path(ref).expanduser()
    if not p.is_dir():
        return None
    for candidate in (p / "artifacts" / "model", p / "model", p):
        if (candidate / MODEL_FILE).is_file() or any(_numbered(candidate)):
            return candidate
    return None


def _numbered(folder: Path) -> list[tuple[int, Path]]:
    if not folder.is_dir():
        return []
    found = []
    for child in folder.iterdir():
        m = NAME.match(child.name)
        if m and (child / MODEL_FILE).is_file():
            found.append((int(m.group(1)), child))
    return sorted(found)


def names(folder: Path) -> list[str]:
    """Version names, oldest first."""
    out = ["v1"] if (folder / MODEL_FILE).is_file() or (folder / "v1" / MODEL_FILE).is_file() else []
    return out + [f"v{n}" for n, _ in _numbered(folder) if n > 1]


def version_file(folder: Path, name: str) -> Path:
    """The model file of version `name` (v1 is the flat file when it is there)."""
    if not NAME.match(str(name)):
        raise VersionError(f"version {name!r} is not a version name; use v1, v2, ... (see `dsagent models SESSION`)")
    flat = folder / MODEL_FILE
    path = flat if name == "v1" and flat.is_file() else folder / name / MODEL_FILE
    if not path.is_file():
        raise VersionError(f"no version {name} in {folder}; this session has {', '.join(names(folder)) or 'no model'} "
                           "(see `dsagent models SESSION`)")
    return path


def active(folder: Path) -> str:
    pointer = folder / ACTIVE
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError:
        name = ""
    if NAME.match(name) and name in names(folder):
        return name
    return "v1" if "v1" in names(folder) else (names(folder) or ["v1"])[-1]


def set_active(folder: Path, name: str) -> None:
    version_file(folder, name)  # refuses an unknown version
    tmp = folder / f".{ACTIVE}.{os.getpid()}.tmp"
    tmp.write_text(name + "\n", encoding="utf-8")
    os.replace(tmp, folder / ACTIVE)


def next_name(folder: Path) -> str:
    existing = [int(n[1:]) for n in names(folder)]
    return f"v{max(existing, default=0) + 1}"


def resolve(ref: str | Path, version: str | None = None) -> Path | None:
    """The model file a session reference means: `version`, else the active one. None when
    `ref` is not a directory with versions (the caller resolves it as before)."""
    folder = model_dir(ref)
    if folder is None:
        if version:
            raise VersionError("--version needs a session (or its model directory), not a model file")
        return None
    return version_file(folder, version or active(folder))


def name_of(model_path: Path) -> str | None:
    """The version name of a model file inside a session's model directory."""
    model_path = Path(model_path)
    if NAME.match(model_path.parent.name):
        return model_path.parent.name
    if model_path.parent.name == "model":
        return "v1"
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def listing(ref: str | Path) -> dict[str, Any]:
    """Every version of a session with what tells them apart, and which one is active."""
    folder = model_dir(ref)
    if folder is None:
        raise VersionError(f"no model directory in {ref}; pass a session directory or id")
    current = active(folder)
    session = _read(folder.parent.parent / "session.json") if folder.parent.name == "artifacts" else {}
    evaluation = _read(folder.parent / paths.EVALUATION) if folder.parent.name == "artifacts" else {}
    rows = []
    for name in names(folder):
        path = version_file(folder, name)
        m = _read(path.with_name(MANIFEST_FILE))
        scores = m.get("scores") or ({"test": evaluation.get("test_score"), "test_ci": evaluation.get("test_ci")}
                                     if name == "v1" and evaluation else {})
        rows.append({
            "version": name, "active": name == current, "model": m.get("model"), "family": m.get("family"),
            "metric": m.get("metric"), "scores": scores, "sha256": m.get("sha256"),
            "data_sha256": m.get("data_sha256") or (session.get("data_sha256") if name == "v1" else None),
            "data_path": m.get("data_path") or (session.get("data_path") if name == "v1" else None),
            "created_at": m.get("created_at") or (session.get("created_at") if name == "v1" else None),
            "parent": m.get("parent"), "promoted": m.get("promoted"), "path": str(path),
        })
    return {"model_dir": str(folder), "active": current, "versions": rows}
