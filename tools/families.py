"""Model families as plugins: the `dsagent.model_families` entry-point group.

A family says which tasks it supports, how it builds its estimator, its Optuna search space and
warm starts (None: not tunable), how its preprocessing looks (scaled inputs, dense output, native
categoricals) and how its fit time grows with rows (the refit estimate). The built-ins
(tools/builtin_families.py) register through pyproject.toml exactly as a third-party package
would; the candidate list, the tuner, the autopilot and build_pipeline (hence the notebook) read
them from here.

No ML library is imported here: the autopilot reads the registry in the agent process.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

ENTRY_POINT_GROUP = "dsagent.model_families"
BUILTIN_MODULE = "dsagent.tools.builtin_families"
CLASSIFICATION = frozenset({"binary", "multiclass"})
ALL_TASKS = frozenset({"binary", "multiclass", "regression"})


@dataclass(frozen=True)
class ModelFamily:
    name: str
    # (params, task kind, seed, n_classes) -> an unfitted scikit-learn estimator; params override defaults.
    build: Callable[[dict[str, Any], str, int, int], Any]
    tasks: frozenset[str] = ALL_TASKS
    # (optuna trial, task kind) -> params; None: tune_model refuses the family.
    search_space: Callable[[Any, str], dict[str, Any]] | None = None
    warm_starts: tuple[dict[str, Any], ...] = ()
    candidate: bool = True  # train_models tries it by default (where it supports the task)
    cheap: bool = False  # a plugin's cheap candidate is tried right after the baseline, before time runs short
    scaled_inputs: bool = False  # standardised numbers and one-hot categories (linear models, networks)
    dense: bool = False  # needs a dense matrix (small TF-IDF)
    # Free text as wide sparse TF-IDF (suits a linear model); otherwise SVD-reduced text beside the
    # tabular columns (an MLP on 40k TF-IDF inputs x 256 units is slow).
    sparse_text: bool = False
    native_categorical: str | None = None  # "native"/"ordinal": may read categoricals itself; default mode
    # In "native" mode: the categoricals as pandas categories ("categories") or text labels ("labels"),
    # and (unfitted estimator, categorical column names) -> None, telling the estimator to read them so.
    native_as: str = "categories"
    read_natively: Callable[[Any, list[str]], None] | None = None
    rows_exponent: float = 1.0  # fit time ~ rows ** this (boosting pays a per-round cost that does not grow)
    # The exponent instead when every search fold stopped before its iteration cap (`n_iter_` below
    # `max_iter`): an optimiser that converges needs fewer passes over more rows. None: rows_exponent.
    converged_rows_exponent: float | None = None
    requires: tuple[str, ...] = ()  # modules its builder imports; one that fails to import skips the family
    package: str = field(default="dsagent", compare=False)  # filled in by the registry

    @property
    def tunable(self) -> bool:
        return self.search_space is not None


_FAMILIES: dict[str, ModelFamily] | None = None


def model_families() -> dict[str, ModelFamily]:
    """Every installed family by name, built-ins first. A broken third-party plugin is skipped with
    a warning (a broken built-in fails loudly)."""
    global _FAMILIES
    if _FAMILIES is None:
        from dsagent.tools.plugins import load_registry

        _FAMILIES = load_registry(ENTRY_POINT_GROUP, BUILTIN_MODULE, "FAMILIES", ModelFamily, "model family")
    return _FAMILIES


def get_family(name: str) -> ModelFamily:
    families = model_families()
    if name not in families:
        raise ValueError(f"unknown model family {name!r}; installed: {', '.join(families)}")
    return families[name]


def families_for(task: str) -> list[ModelFamily]:
    """Families that support a task kind, in registry order."""
    return [f for f in model_families().values() if task in f.tasks]


def tunable_names() -> tuple[str, ...]:
    return tuple(f.name for f in model_families().values() if f.tunable)


def unavailable(family: ModelFamily) -> str | None:
    """Why a family cannot be used in this environment (a library it requires fails to import),
    or None. Called by the tools that fit models, never by the agent process (it imports them)."""
    for module in family.requires:
        try:
            importlib.import_module(module)
        except Exception as exc:  # ImportError, or a broken binary wheel raising anything at import
            return f"{family.name} skipped: {module} does not import ({type(exc).__name__}: {str(exc)[:100]})"
    return None
