"""The clarifying answers: one pydantic model shared by answers files, MCP and Python callers.

Every question the agent asks maps to one of these keys, so an answer given up front is never
asked again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

JUDGEMENT = {"use your judgement", "use your judgment", "your call", "you decide", "default", "skip"}


# Keys whose answer names a column. One-word phrases ("default", "skip") are also plausible column
# names there (ISLR's Default data keeps its target in a column called "default": `--target default`
# was read as "you decide" and the run stopped without a target), so only the longer phrases count.
COLUMN_KEYS = {"target", "time_column", "group_column"}
ONE_WORD = {"default", "skip"}


def is_judgement(value: Any, key: str | None = None) -> bool:
    """The user's way of saying "no preference: take the stated default" (for `key`, when given)."""
    if not isinstance(value, str):
        return False
    text = value.strip().lower()
    return text in JUDGEMENT and not (key in COLUMN_KEYS and text in ONE_WORD)


def _column_list(text: str) -> list[str]:
    """Columns written as one string: "age, income" -> ["age", "income"]."""
    return [v for v in re.split(r"\s*,\s*", text.strip()) if v]


class Answers(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Keys the user explicitly left to the agent's judgement: answered with the question's
    # default (recorded as an assumption), never asked again.
    _judgement: set[str] = PrivateAttr(default_factory=set)

    goal: str | None = None
    target: str | None = None
    task: str | None = None  # auto or an installed task type (dsagent.tools.task_types: plugins add more)
    metric: str | None = None
    positive_class: str | None = None
    cost_fp: float | None = Field(None, ge=0)
    cost_fn: float | None = Field(None, ge=0)
    time_column: str | None = None
    group_column: str | None = None
    # Forecasting (task: forecast; the library is dsagent.tools.forecast): the id columns that tell
    # series apart in a panel, the steps ahead to forecast, and a pandas frequency alias (MS, W, D,
    # ...) when the timestamps should not decide it. `frequency` is checked against the data there.
    series_columns: list[str] | None = None
    horizon: int | None = Field(None, ge=1, le=10000)
    frequency: str | None = None
    # The forecasting models to backtest (default: all; ETS, Theta and ARIMA where series are few and the
    # time budget allows); the seasonal naive always runs, as the baseline every forecast is held against.
    # Columns whose future values are given at prediction time (price, holidays): same-time features of the
    # global model, required by `dsagent predict` for the horizon; other columns enter only through their lags.
    known_future_columns: list[str] | None = None
    forecast_models: list[Literal["naive", "seasonal_naive", "gbm", "ets", "theta", "arima"]] | None = None
    segment_columns: list[str] | None = None
    # Ranking (task: ranking, dsagent.tools.ranking; the rows of one group_column are ranked together):
    # the top positions NDCG@k / MAP@k / precision@k look at, and the grade from which a row is relevant.
    top_k: int | None = Field(None, ge=1, le=1000)
    relevance_threshold: float | None = None
    sensitive_columns: list[str] | None = None
    id_columns: list[str] | None = None
    # Each of these changes one decision (tools/business.py says which, and the report says how).
    latency_ms: float | None = Field(None, gt=0)  # candidates slower per row are left out
    prediction_volume: float | None = Field(None, gt=0)  # rows a day: batch or online scoring
    retrain_every_days: float | None = Field(None, gt=0)  # the monitoring plan's retraining schedule
    min_useful_score: float | None = None  # go / no-go against the test CI, in the run's metric
    # What is in use today: its score in the run's metric (a number), or its per-row predictions,
    # as a column of the data or a rule in the derived-feature language ("tenure < 12"), then
    # compared with the model by a paired bootstrap on the test split (tools/current.py).
    current_baseline: float | str | None = None
    # Columns known when a prediction is made ("all": every column); the others are left out.
    features_at_prediction_time: list[str] | Literal["all"] | None = None
    interpretability: Literal["low", "medium", "high"] | None = None
    # Only these model families are candidates (the baseline always runs): a stakeholder constraint
    # ("production runs XGBoost only", "a linear model or nothing"), or a quicker run.
    model_families: list[str] | None = None
    time_budget: float | None = Field(None, gt=0)
    # What `dsagent serve` answers for a row the model cannot score (a class, or a number for
    # regression); recorded in the model card (tools/fallback.py).
    fallback: str | float | None = None
    # Where the work runs (issue 23): local[:N] or tcp://HOST:PORT, and the Optuna study's storage
    # (a journal file or a database URL). Checked when the run starts (dsagent.runtime.cluster_settings).
    cluster: str | None = None
    tuning_storage: str | None = None
    # `name = expression` strings in the whitelisted language of tools/derived.py (never eval).
    # Checked here for syntax, against the data's columns when the run starts.
    derived_features: list[str] | None = None
    # false: the autopilot tries no automatic candidate features (tools/candidates.py); default on.
    auto_features: bool | None = None
    # true: once the test split is scored, the shipped model is the same configuration refitted on every
    # labelled row (training + test; the score stays the one measured before); false: the scored model ships.
    refit_all_rows: bool | None = None
    # Work without a target (task clustering / anomaly; dsagent.tools.unsupervised).
    n_segments: list[int] | None = Field(None, min_length=1, max_length=2)  # [min, max] segments to consider
    expected_anomaly_rate: float | None = Field(None, gt=0, lt=0.5)  # share of rows expected to be anomalies
    anomaly_label: str | None = None  # column of known anomalies: used only to evaluate, never to fit
    # Free text the user wants on record (an answer to "anything else?", or an answer to a
    # question whose key is not one of the above). Recorded and shown to the agent, never
    # rejected: any value is kept as text.
    note: str | None = None

    @field_validator("task")
    @classmethod
    def _task_installed(cls, value: str | None) -> str | None:
        from dsagent.tools.task_types import task_names  # the registry: no ML library

        if value is not None and value not in ("auto", *task_names()):
            raise ValueError(f"unknown task {value!r}; use auto or one of: {', '.join(task_names())}")
        return value

    @field_validator("model_families", mode="before")
    @classmethod
    def _families_installed(cls, value: Any) -> Any:
        """"all" (or "any") for no restriction; "linear, xgboost" as two. Each name must be an
        installed candidate family (the registry: no ML library imported)."""
        if isinstance(value, str):
            if value.strip().lower() in ("all", "any", ""):
                return None
            value = _column_list(value)
        if not isinstance(value, list):
            return value
        from dsagent.tools.families import model_families

        offered = [f.name for f in model_families().values() if f.candidate and f.name != "baseline"]
        unknown = [v for v in value if v not in offered]
        if unknown:
            raise ValueError(f"unknown model famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(map(repr, unknown))}; "
                             f"choose from: {', '.join(offered)} (the baseline always runs)")
        return value or None

    @field_validator("note", mode="before")
    @classmethod
    def _note_as_text(cls, value: Any) -> Any:
        return value if value is None or isinstance(value, str) else note_text(value)

    @field_validator("series_columns", "known_future_columns", mode="before")
    @classmethod
    def _one_series_column(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("segment_columns", "sensitive_columns", "id_columns", mode="before")
    @classmethod
    def _columns_as_offered(cls, value: Any) -> Any:
        """The answer as the question offers it: "no" (YAML reads a bare no as false) for none of the
        columns, one column, or "a, b". An MCP host or an answers file that picked the option "no"
        got "Input should be a valid list"; the chat already read it so."""
        if value is False or (isinstance(value, str) and value.strip().lower() in ("no", "none", "")):
            return []
        if isinstance(value, str):
            return _column_list(value)
        return value

    @field_validator("n_segments", mode="before")
    @classmethod
    def _segments_in_words(cls, value: Any) -> Any:
        """A typed answer ("4", "3-6", "[3, 6]", "[2, 8] (let the data choose)") as its one or two numbers."""
        if isinstance(value, (int, str)):
            numbers = [int(n) for n in re.findall(r"\d+", str(value))][:2]
            return numbers or value
        return value

    @field_validator("anomaly_label", mode="before")
    @classmethod
    def _no_label(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("none", "no", "") else value

    @field_validator("features_at_prediction_time", mode="before")
    @classmethod
    def _known_columns(cls, value: Any) -> Any:
        if isinstance(value, str):  # "all", or columns written as one string: "age, income"
            return "all" if value.strip().lower() == "all" else _column_list(value)
        return value

    @field_validator("current_baseline", mode="before")
    @classmethod
    def _current_parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return float(value.replace(",", ""))
        except ValueError:
            pass
        from dsagent.tools.derived import check_features  # ast and re only: no ML library

        check_features([f"current_baseline = {value}"])  # a column or a rule: checked for syntax here
        return value.strip()

    @field_validator("derived_features", mode="before")
    @classmethod
    def _derived_parse(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, str):  # one feature given as a plain string
            value = [value]
        from dsagent.tools.derived import check_features  # ast and re only: no ML library

        check_features(value)  # DerivedError is a ValueError: a one-line BadInput via parse_answers
        return value

    def given(self) -> dict[str, Any]:
        """Only the keys somebody actually answered."""
        return self.model_dump(exclude_none=True)

    def for_asker(self) -> dict[str, Any]:
        """Answers plus the keys left to judgement (as the judgement phrase the askers understand)."""
        return {**{k: "use your judgement" for k in self._judgement}, **self.given()}

    def merged(self, other: "Answers | dict[str, Any] | None") -> "Answers":
        extra = other.given() if isinstance(other, Answers) else {k: v for k, v in (other or {}).items() if v is not None}
        if "note" in extra:
            extra["note"] = join_notes(self.note, note_text(extra["note"]))
        result = parse_answers({**self.given(), **extra})
        result._judgement |= self._judgement | (other._judgement if isinstance(other, Answers) else set())
        result._judgement -= set(result.given())
        return result


ANSWER_KEYS = list(Answers.model_fields)


class BadInput(Exception):
    """Bad usage or input: the CLI prints the one-line message and exits 2."""


def load_answers(path: str | Path) -> Answers:
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"answers file {p} not found; pass a YAML or JSON file with keys such as target, metric, cost_fp")
    text = p.read_text(encoding="utf-8", errors="replace")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # yaml and json raise different types; both mean the same thing here
        raise BadInput(f"answers file {p} is not valid YAML/JSON ({str(exc).splitlines()[0]}); fix its syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadInput(f"answers file {p} must hold a mapping of keys to values, e.g. 'target: churn'")
    return parse_answers(data, source=str(p))


def note_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


def join_notes(old: str | None, new: str | None) -> str | None:
    """Notes add up (each answer to a `note` question is kept), without repeating a line."""
    if not old or not new or new in old.split("\n"):
        return old or new
    return f"{old}\n{new}"


def parse_answers(data: dict[str, Any], source: str = "answers", *, as_note: bool | set[str] = False) -> Answers:
    """Answers from a mapping. An unknown key is bad input, except those `as_note` lets through
    (all with True): answers on a key that is not, or no longer, an answers key (a question from
    an older session), kept on record as `key: value` lines of the note instead of failing."""
    folded = [k for k in data if k not in ANSWER_KEYS and (as_note is True or (as_note and k in as_note))]
    if folded:
        note = data.get("note")
        note = note_text(note) if note is not None else None
        for key in folded:
            if data[key] is not None:
                note = join_notes(note, f"{key}: {note_text(data[key])}")
        data = {**{k: v for k, v in data.items() if k not in folded}, "note": note}
    unknown = [k for k in data if k not in ANSWER_KEYS]
    if unknown:
        raise BadInput(f"{source}: unknown key(s) {', '.join(map(str, unknown))}; known keys: {', '.join(ANSWER_KEYS)}")
    judgement = {k for k, v in data.items() if is_judgement(v, k)}
    try:
        answers = Answers.model_validate({k: v for k, v in data.items() if k not in judgement})
        answers._judgement = judgement
        return answers
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = str(first["msg"]).removeprefix("Value error, ")  # our validators' own one-line reasons
        raise BadInput(f"{source}: {'.'.join(map(str, first['loc']))}: {msg}") from None


# The one default of the run's wall-clock budget. Every surface (CLI, chat, MCP, Python API)
# passes None when the caller gave no budget, so an answer can still decide it.
DEFAULT_TIME_BUDGET = 120.0


def resolve_time_budget(explicit: float | None, answers: Answers | None = None, saved: float | None = None) -> float:
    """Seconds for a run: the explicit argument > the answers' time_budget > what a resumed
    session saved > DEFAULT_TIME_BUDGET."""
    for value in (explicit, answers.time_budget if answers is not None else None, saved):
        if value is not None:
            if value <= 0:
                raise BadInput(f"time_budget must be a positive number of seconds, not {value:g}")
            return float(value)
    return DEFAULT_TIME_BUDGET


def cli_answers(args, answers: Answers) -> Answers:
    """`dsagent run`/`chat` flags that are answers keys (--task, --horizon) beat the answers file: explicit > answers."""
    if args.horizon is not None and args.horizon < 1:
        raise BadInput(f"--horizon must be a positive number of steps, not {args.horizon}")
    return answers.merged({"task": args.task, "horizon": args.horizon})
