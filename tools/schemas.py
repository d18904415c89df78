"""Typed artifacts: one pydantic model per record that crosses a tool boundary, each with one
reader and one writer.

A tool that needs another tool's result reads it through the model here, never by opening the
JSON and picking keys: a renamed or missing key then fails in one place, at the reader, with the
file's name. The JSON on disk keeps the keys it always had (reports, the notebook, `dsagent
monitor` and sessions saved before this module read them).

`extra="allow"`: a record keeps keys this module does not declare (added by a newer tool, or a
plugin's task type), and writes them back unchanged. `record["key"]` / `record.get(key)` still
work on every model, so code written against the plain dicts (and sibling branches that still
do) keeps working while it moves to attributes; new code uses attributes.

No ML library is imported here: the agent (autopilot) reads these models too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from dsagent.tools import paths


class Record(BaseModel):
    """A JSON record with typed fields, extra keys kept, and dict-style reads for old callers."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, default)
        return default if value is None and default is not None else value

    def __contains__(self, key: str) -> bool:
        return getattr(self, key, None) is not None

    def to_json(self) -> dict[str, Any]:
        """The keys that were given or set (a record never gains keys it did not have on disk)."""
        return self.model_dump(mode="json", exclude_unset=True)


class Artifact(Record):
    """A record stored as one file in artifacts/ (FILE): `read` and `write` are its only I/O."""

    FILE: ClassVar[str]

    @classmethod
    def path(cls, artifacts_dir: Path) -> Path:
        return Path(artifacts_dir) / cls.FILE

    @classmethod
    def read(cls, artifacts_dir: Path):
        """The artifact, or None when the tool that writes it has not run."""
        path = cls.path(artifacts_dir)
        return cls.model_validate(json.loads(path.read_text())) if path.exists() else None

    def write(self, artifacts_dir: Path, indent: int | None = 1) -> Path:
        path = self.path(artifacts_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Python-mode dump + default=str: a numpy scalar in an extra key is written as before.
        path.write_text(json.dumps(self.model_dump(exclude_unset=True), indent=indent, default=str))
        return path


# -- task.json ------------------------------------------------------------------------------
class SplitSpec(Record):
    kind: str  # stratified | random | time | group
    test_size: float = 0.2
    seed: int = 0
    time_column: str | None = None
    group_column: str | None = None


class CVPlan(Record):
    kind: str  # kfold | holdout
    folds: int = 5
    fraction: float = 0.2
    max_rows: int | None = None


class TaskSpec(Artifact):
    """What define_task fixed: target, task type, metric, features and the untouched test split."""

    FILE: ClassVar[str] = paths.TASK
    target: str
    task: str
    metric: str
    greater_is_better: bool
    positive_class: str | None = None
    classes: list[str] | None = None
    minority_frac: float | None = None
    features: dict[str, str]
    dropped: list[dict[str, Any]] = []
    n_rows: int
    n_labelled: int
    n_train: int
    n_test: int
    split: SplitSpec
    cv: CVPlan
    cost_fp: float | None = None
    cost_fn: float | None = None
    notes: list[str] = []
    train_rows: list[int] = []
    test_rows: list[int] = []
    derived: dict[str, Any] | None = None  # declared derived features (tools.derived), when any

    @property
    def n_classes(self) -> int:
        return len(self.classes) if self.classes else 0

    @property
    def search_is_subsampled(self) -> bool:
        return int(self.cv.max_rows or self.n_train) < self.n_train

    def write(self, artifacts_dir: Path, indent: int | None = None) -> Path:  # row lists: compact
        return super().write(artifacts_dir, indent)


# -- cross-validation ------------------------------------------------------------------------
class CVResult(Record):
    """What cross_validate measured for one spec. `oof`/`covered` are arrays (in memory only);
    `timings()` is the JSON-safe rest, which tune_model keeps per Optuna trial."""

    oof: Any
    covered: Any
    fold_scores: list[float]
    fit_s: float
    predict_s: float
    n_predicted: int
    refit_params: dict[str, Any]
    fold_fit_s: float | None = None
    fold_rows: float | None = None
    fold_rounds: float | None = None
    fold_val_rows: float | None = None
    fold_converged: bool | None = None  # every fold's model stopped before its iteration cap (None: no such cap)

    TIMINGS: ClassVar[tuple[str, ...]] = ("fit_s", "predict_s", "n_predicted", "refit_params", "fold_fit_s",
                                          "fold_rows", "fold_rounds", "fold_val_rows", "fold_converged")

    def timings(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.TIMINGS}

    @classmethod
    def from_timings(cls, oof: Any, covered: Any, fold_scores: list[float], timings: dict[str, Any],
                     **defaults: Any) -> "CVResult":
        """Rebuild a result from `timings()` saved earlier (keys missing there take `defaults`)."""
        values = {**defaults, **{k: v for k, v in timings.items() if k in cls.TIMINGS}}
        return cls(oof=oof, covered=covered, fold_scores=list(fold_scores), **values)


# -- leaderboard.json ------------------------------------------------------------------------
class LeaderboardRow(Record):
    name: str
    family: str
    params: dict[str, Any] = {}
    metric: str
    cv_mean: float
    cv_std: float = 0.0
    folds: list[float] = []
    oof_metrics: dict[str, float] = {}
    fit_s: float = 0.0
    fold_fit_s: float | None = None
    fold_rows: float | None = None
    fold_rounds: float | None = None
    fold_val_rows: float | None = None
    fold_converged: bool | None = None
    predict_ms_per_1k: float = 0.0
    refit_s_est: float | None = None
    trials: int | None = None
    # Scored on held-out training rows after a fit on several times the search's rows, when the
    # search ran on a subsample (tools/more_rows.py); such rows are ordered among themselves by it.
    more_rows_score: float | None = None


class Leaderboard:
    """leaderboard.json: rows best first by CV mean, except that rows with a more_rows_score are
    ordered among the places they hold by that score (measured on more rows than the CV's)."""

    FILE = paths.LEADERBOARD

    @staticmethod
    def read(artifacts_dir: Path) -> list[LeaderboardRow]:
        path = Path(artifacts_dir) / paths.LEADERBOARD
        return [LeaderboardRow.model_validate(r) for r in json.loads(path.read_text())] if path.exists() else []

    @staticmethod
    def write(artifacts_dir: Path, rows: list[LeaderboardRow], greater_is_better: bool) -> list[LeaderboardRow]:
        """Rank (a later row replaces an earlier one of the same name), write, return the ranking."""
        by_name = {r.name: r for r in rows}
        ranked = sorted(by_name.values(), key=lambda r: -r.cv_mean if greater_is_better else r.cv_mean)
        looked = [i for i, r in enumerate(ranked) if r.more_rows_score is not None]
        by_score = sorted((ranked[i] for i in looked), key=lambda r: -r.more_rows_score if greater_is_better else r.more_rows_score)
        for i, row in zip(looked, by_score):
            ranked[i] = row
        path = Path(artifacts_dir) / paths.LEADERBOARD
        path.write_text(json.dumps([r.to_json() for r in ranked], indent=1))
        return ranked


# -- evaluation, explanation, monitoring -----------------------------------------------------
class Evaluation(Artifact):
    FILE: ClassVar[str] = paths.EVALUATION
    model: str
    family: str
    params: dict[str, Any] = {}
    metric: str
    greater_is_better: bool = True
    test_score: float
    test_ci: list[float] | None = None
    baseline_score: float
    cv_mean: float | None = None
    cv_std: float | None = None
    test_metrics: dict[str, float] = {}
    n_test: int = 0
    n_train: int = 0
    threshold: dict[str, Any] | None = None
    files: dict[str, str] = {}


class Explanation(Artifact):
    FILE: ClassVar[str] = paths.EXPLANATION
    permutation_importance: list[dict[str, Any]] = []
    derived_importance: list[dict[str, Any]] = []  # derived features, shuffled after the model's step computes them
    scoring: str | None = None
    rows: int = 0
    repeats: int = 0
    shap_mean_abs: dict[str, float] | None = None

    def important_features(self) -> list[str]:
        """Columns whose shuffling hurt the held-out score."""
        return [r["feature"] for r in self.permutation_importance if r.get("importance", 0) > 0]


class MonitoringPlan(Artifact):
    FILE: ClassVar[str] = paths.MONITORING
    target: str
    task: str
    metric: str
    features: dict[str, Any]
    thresholds: dict[str, Any]
    performance: dict[str, Any]
    predictions: dict[str, Any] = {}
    retraining_triggers: list[str] = []
    latency_budget_ms: float | None = None
