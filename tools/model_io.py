"""Saving and loading the model artifact without executing code on load.

The fitted Pipeline is stored with skops (no pickle). skops itself trusts scikit-learn's
estimators and plain containers; every other type found in a file must be on TRUSTED_TYPES, an
explicit list of exact names (no prefixes: `numpy.` or `builtins.` would admit functions). A file
with anything else is refused before a single object is built.

Writes are crash-safe: model and manifest are written to temporary files in the same directory,
fsynced, then renamed over the old ones (model first, manifest second, directory fsynced). A
process killed before the first rename leaves the previous model untouched. A kill between the
two renames leaves a complete, fsynced new model whose complete manifest is still pending;
`load_model` finds that pending manifest by the model's sha256 and rolls forward. Either way a
half-written file is never loaded. A model whose bytes match neither manifest is refused as
tampered.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from dsagent.tools import paths
from dsagent.tools.registry import ToolError

# Types skops does not trust by default that our pipelines contain (found by saving every model
# family of dsagent.tools.features; tests/test_model_io.py keeps this list honest). Add a type here only
# after reading how skops rebuilds it: constructors that run code are never acceptable.
TRUSTED_TYPES: tuple[str, ...] = (
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "xgboost.core.Booster",  # restored from its own JSON/UBJ buffer via __setstate__, no pickle
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
    "xgboost.sklearn.XGBRanker",  # task: ranking (tools/ranking)
    # LightGBM and CatBoost (issue 18): each estimator's __setstate__ rebuilds its model from the
    # library's own text/binary model format (LGBM_BoosterLoadModelFromString, CatBoost's
    # _load_from_string), no pickle; LightGBM keeps its parameters in an OrderedDict (a dict).
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor",
    "lightgbm.sklearn.LGBMRanker",  # task: ranking's lambdarank candidates (tools/ranking), same state as above
    "catboost.core.CatBoostClassifier",
    "catboost.core.CatBoostRegressor",
    "dsagent.tools.features.DatetimeParts",
    # One-hot columns of integer-coded numbers: state is column positions, names and lists of floats.
    "dsagent.tools.features.CodedLevels",
    # Bagged final models: a list of fitted Pipelines and a class count (BaseEstimator.__setstate__).
    "dsagent.tools.bagging.BaggedClassifier",
    "dsagent.tools.bagging.BaggedRegressor",
    # Stacking: member Pipelines and the level-2 coefficients as lists of floats (BaseEstimator.__setstate__).
    "dsagent.tools.stacking.StackedClassifier",
    "dsagent.tools.stacking.StackedRegressor",
    "dsagent.tools.features.TextColumn",
    # Free text: state is fitted TfidfVectorizer / TruncatedSVD objects (plain sklearn types) and ints.
    "dsagent.tools.text.TextFeatures",
    # Sentence embeddings: state is the model's name, a batch size and the width (str and ints); the
    # weights are not in the file: the packaged model is loaded again by name (tools/text_embed.py).
    "dsagent.tools.text_embed.SentenceEmbeddings",
    "dsagent.tools.features.ToStrings",
    "dsagent.tools.features.Categories",  # categories_ is a list of lists of strings
    # TargetEncoder with a faster transform: BaseEstimator.__setstate__, the state is sklearn's own
    # (arrays of encodings, categories as string arrays, a seeded KFold).
    "dsagent.tools.features.TargetEncoding",
    # Derived features: skops rebuilds it with __new__ and BaseEstimator.__setstate__ (a __dict__ update);
    # its state is the expressions as strings and dicts/lists of strings and floats (no callable:
    # the expressions are parsed again, by a whitelist, when it transforms).
    "dsagent.tools.derived_step.DerivedFeatures",
    # Wide-data selection: state is column names, a bool, an int and dropped_ (a dict of strings).
    "dsagent.tools.select_step.WideSelection",
    "sklearn.utils._bunch.Bunch",  # VotingClassifier/VotingRegressor.named_estimators_ (ensembles); a dict subclass
    "sklearn.model_selection._split.KFold",  # TargetEncoder's seeded splitter (three plain attributes)
    # MLPClassifier's Adam state (step sizes and moment arrays, restored as plain attributes; no __setstate__)
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    # The anomaly baseline: two float arrays restored as plain attributes (BaseEstimator.__setstate__).
    "dsagent.tools.unsupervised.anomaly.RobustZScore",
)
REFUSED_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".dill", ".cloudpickle", ".pt", ".pth")
MANIFEST = "manifest.json"
PENDING = ".pending"  # suffix of a complete, fsynced manifest waiting for its rename


class ModelFileError(ToolError):
    pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def library_versions() -> dict[str, str]:
    out = {}
    for name in ("scikit-learn", "xgboost-cpu", "xgboost", "lightgbm", "catboost", "numpy", "pandas", "scipy", "skops", "dsagent"):
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
            entry["n_categories"] = int(len(cats))
        columns.append(entry)
    return {"columns": columns}


class _NoTorch:
    """A finder that refuses `import torch` (see skops_io)."""

    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not imported while skops lists scikit-learn's estimators")
        return None


def skops_io():
    """skops.io, imported without importing torch. skops builds its list of trusted types from
    sklearn.utils.all_estimators(), whose walk imports every subpackage of scikit-learn, and
    sklearn.externals.array_api_compat.torch imports torch when it is installed (it is, for the
    text embeddings): ~1.5 CPU-seconds and hundreds of MB in every process that saves or loads a
    model (the run's worker, the notebook's kernel, `dsagent predict`, `monitor`, `serve`), for
    the same list (208 names with torch or without). A step that needs torch imports it as usual
    afterwards; in a process that already has it, nothing changes."""
    import sys

    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io as sio

        return sio
    blocker = _NoTorch()
    sys.meta_path.insert(0, blocker)
    try:
        import skops.io as sio
    finally:
        sys.meta_path.remove(blocker)
    return sio


class _CompactJson:
    """The json module, except that dumps() ignores `indent`: what skops writes its schema with."""

    def __getattr__(self, name: str):
        return getattr(json, name)

    @staticmethod
    def dumps(obj, **_ignored) -> str:
        return json.dumps(obj, separators=(",", ":"))


@contextlib.contextmanager
def _compact_schema():
    """skops writes a model's schema.json with `json.dumps(state, indent=2)` (skops/io/_persist.py),
    and an indent keeps json off its C encoder: 2.1 s of a 2.8 s save for a 300-tree forest blend
    (8.5 MB of schema), the same schema compact in 0.15 s (2.5 MB). The file loads the same (JSON is
    JSON). Applied only where skops still writes it that way; otherwise a no-op."""
    import sys

    persist = sys.modules.get("skops.io._persist")
    if persist is None or getattr(persist, "json", None) is not json:
        yield
        return
    persist.json = _CompactJson()
    try:
        yield
    finally:
        persist.json = json


def untrusted_types_of(path: Path) -> list[str]:
    sio = skops_io()

    return [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]


def save_model(model, model_path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write model + manifest so that a crash at any point leaves a loadable pair."""
    sio = skops_io()

    model_path = Path(model_path)
    folder = model_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{os.urandom(3).hex()}"
    tmp = folder / f".{model_path.name}.{tag}.tmp"
    manifest_path = folder / MANIFEST
    manifest_tmp = folder / f".{MANIFEST}.{tag}{PENDING}"
    try:
        with _compact_schema():
            # Deflate at level 1, not zlib's default 6: a blend of XGBoost and two forests (email's
            # at 60 s, 7 MB) saved in 2.8-3.2 s against 3.7-4.0 s (2026-12-03, a loaded machine) into a
            # file 17% larger, loading as fast (evaluate_model saves every shipped model).
            sio.dump(model, tmp, compression=8, compresslevel=1)  # zipfile.ZIP_DEFLATED
        _fsync_file(tmp)
        refused = untrusted_types_of(tmp)
        if refused:  # refuse at save time: a model we could not load later must not replace a good one
            raise ModelFileError(f"the model contains types outside the trusted list (dsagent.tools.model_io.TRUSTED_TYPES) ({', '.join(refused[:5])}); "
                                 "review how skops rebuilds them and add them to the list")
        digest = _sha256(tmp)
        full = {**manifest, "format": "skops", "file": model_path.name, "sha256": digest,
                "trusted_types": list(TRUSTED_TYPES), "versions": library_versions()}
        manifest_tmp.write_text(json.dumps(full, indent=1, default=str), encoding="utf-8")
        _fsync_file(manifest_tmp)
        os.replace(tmp, model_path)  # 1: new model in place; its manifest is complete and pending
        _fsync_dir(folder)
        os.replace(manifest_tmp, manifest_path)  # 2: pair consistent again
        _fsync_dir(folder)
    except BaseException:
        for leftover in (tmp, manifest_tmp):
            # A pending manifest whose model is already in place is the roll-forward record: keep it.
            if leftover.exists() and not (leftover == manifest_tmp and not tmp.exists()):
                leftover.unlink(missing_ok=True)
        raise
    for stale in folder.glob(f".{MANIFEST}.*{PENDING}"):  # from earlier crashes, now superseded
        stale.unlink(missing_ok=True)
    for stale in folder.glob(f".{model_path.name}.*.tmp"):  # half-written by a process that died
        if not _pid_alive(stale.name.split(".")[-2].split("-")[0]):
            stale.unlink(missing_ok=True)
    return full


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def resolve_model_path(ref: str | Path, version: str | None = None) -> Path:
    """A session directory, its artifacts directory, a model directory or a .skops file. A
    directory with versions gives `version`, else its active version (tools/versions.py)."""
    from dsagent.tools import versions

    p = Path(ref).expanduser()
    if p.suffix.lower() in REFUSED_SUFFIXES:
        raise ModelFileError(f"{p.name} is a pickle/joblib file; dsagent refuses to load it because unpickling runs "
                             "arbitrary code. Load it only if you trust its author, then re-save the model with "
                             "skops (or re-run `dsagent run`)")
    found = versions.resolve(p, version)
    if found is not None:
        return found
    if p.is_dir():
        for candidate in (p / paths.MODEL, p / "artifacts" / paths.MODEL, p / "model.skops"):
            if candidate.is_file():
                return candidate
        pickles = [q.name for q in (*p.glob("*.pkl"), *p.glob("*.joblib"), *p.glob("artifacts/model/*.pkl"))]
        if pickles:
            raise ModelFileError(f"{p} only holds pickle/joblib files ({', '.join(pickles[:3])}); dsagent refuses them "
                                 "because unpickling runs arbitrary code")
    elif p.is_file():
        return p
    raise ModelFileError(f"no model found at {p}; pass a session directory, a session id or a model.skops file")


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _matching_manifest(path: Path, digest: str) -> dict[str, Any] | None:
    """The manifest of this exact file: the committed one, or a pending one left by a crash
    between the two renames of save_model (roll forward)."""
    current = _read_manifest(path.with_name(MANIFEST))
    if current and current.get("sha256") == digest:
        return current
    for pending in sorted(path.parent.glob(f".{MANIFEST}.*{PENDING}")):
        found = _read_manifest(pending)
        if found and found.get("sha256") == digest and found.get("file") == path.name:
            return found
    return None


def load_model(ref: str | Path, version: str | None = None) -> tuple[Any, dict[str, Any]]:
    sio = skops_io()

    path = resolve_model_path(ref, version)
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head[:1] == b"\x80":
        raise ModelFileError(f"{path.name} is a pickle, not a skops file; dsagent refuses it because unpickling runs "
                             "arbitrary code")
    if head != b"PK\x03\x04":
        raise ModelFileError(f"{path} is not a skops model file (a skops file is a zip archive); re-run training")
    if not path.with_name(MANIFEST).is_file() and not list(path.parent.glob(f".{MANIFEST}.*{PENDING}")):
        raise ModelFileError(f"{path} has no {MANIFEST} beside it, so its integrity cannot be checked; "
                             "use a model written by dsagent")
    manifest = _matching_manifest(path, _sha256(path))
    if manifest is None:
        raise ModelFileError(f"{path} does not match the sha256 in its manifest: the file was modified or "
                             "damaged; restore it or re-run training")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelFileError(f"{path} is not a readable skops model ({type(exc).__name__}); re-run training") from None
    refused = [t for t in untrusted if t not in TRUSTED_TYPES]
    if any(t.startswith("tools.features.") for t in refused):
        # dsagent 0.1 installed a top-level `tools` package; its classes now live in dsagent.tools.
        raise ModelFileError(f"{path} was saved by dsagent 0.1 (before its code moved into the `dsagent` package); "
                             "re-run training with this version to get a model it can load")
    if refused:
        raise ModelFileError(f"{path} contains types outside the trusted list ({', '.join(refused[:5])}); "
                             "refusing to load it")
    model = sio.load(path, trusted=untrusted)
    return model, manifest


def session_meta(model_path: Path) -> dict[str, Any]:
    """session.json of the session that trained the model, when the model lives in one."""
    for folder in list(model_path.resolve().parents)[:4]:
        meta = folder / "session.json"
        if meta.is_file():
            try:
                return json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
    return {}
