"""Saving and loading the model artifact without executing code on load.

The fitted Pipeline is stored with skops (no pickle) and loaded with an explicit allowlist of
trusted type prefixes; anything else in the file is refused. Writes are atomic (temp file +
fsync + rename) so a process killed mid-save never replaces the previous model. A manifest
beside the model records its sha256, library versions and the input schema; a model whose
bytes do not match its manifest is refused as tampered.
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from tools import paths
from tools.registry import ToolError

TRUSTED_PREFIXES = ("sklearn.", "xgboost.", "numpy.", "scipy.sparse.", "tools.features.", "builtins.", "collections.",
                    "pandas.")
REFUSED_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".dill")


class ModelFileError(ToolError):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_replace(tmp: Path, final: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("scikit-learn", "xgboost-cpu", "xgboost", "numpy", "pandas", "skops", "dsagent"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def input_schema(X) -> dict[str, Any]:
    """Columns, dtypes and (for categoricals) the categories seen in training."""
    import pandas as pd

    columns = []
    for col in X.columns:
        s = X[col]
        entry: dict[str, Any] = {"name": str(col), "dtype": str(s.dtype)}
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            cats = s.dropna().astype(str).value_counts()
            entry["categories"] = cats.index[:200].tolist()
        columns.append(entry)
    return {"columns": columns}


def save_model(model, model_path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    import skops.io as sio

    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(f".{model_path.name}.{os.getpid()}.tmp")
    sio.dump(model, tmp, compression=8)  # zipfile.ZIP_DEFLATED
    digest = _sha256(tmp)
    manifest = {**manifest, "format": "skops", "file": model_path.name, "sha256": digest, "versions": library_versions()}
    manifest_path = model_path.with_name("manifest.json")
    manifest_tmp = manifest_path.with_name(f".manifest.{os.getpid()}.tmp")
    manifest_tmp.write_text(json.dumps(manifest, indent=1, default=str))
    # Model first, then manifest: a kill between the two leaves a new model with the old manifest,
    # which load_model refuses (sha mismatch) rather than silently mixing versions.
    _fsync_replace(tmp, model_path)
    _fsync_replace(manifest_tmp, manifest_path)
    return manifest


def resolve_model_path(ref: str | Path) -> Path:
    """A session directory, its artifacts directory, a model directory or a .skops file."""
    p = Path(ref).expanduser()
    if p.suffix.lower() in REFUSED_SUFFIXES:
        raise ModelFileError(f"{p.name} is a pickle/joblib file; dsagent only loads .skops models because "
                             "pickles run code when loaded. Re-save the model with dsagent or skops")
    for candidate in (p, p / paths.MODEL, p / "artifacts" / paths.MODEL, p / "model.skops"):
        if candidate.is_file():
            return candidate
    raise ModelFileError(f"no model found at {p}; pass a session directory or a model.skops file")


def load_model(ref: str | Path) -> tuple[Any, dict[str, Any]]:
    import skops.io as sio

    path = resolve_model_path(ref)
    manifest_path = path.with_name("manifest.json")
    if not manifest_path.is_file():
        raise ModelFileError(f"{path} has no manifest.json beside it; it was not written by dsagent")
    manifest = json.loads(manifest_path.read_text())
    if _sha256(path) != manifest.get("sha256"):
        raise ModelFileError(f"{path} does not match the sha256 in its manifest: the file was modified or "
                             "half-written; re-run training or restore the file")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelFileError(f"{path} is not a readable skops model ({type(exc).__name__}); re-run training") from None
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise ModelFileError(f"{path} contains types outside the trusted list ({', '.join(refused[:5])}); refusing to load")
    model = sio.load(path, trusted=untrusted)
    return model, manifest
