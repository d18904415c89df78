"""The clarifying answers: one pydantic model shared by answers files, MCP and Python callers.

Every question the agent asks maps to one of these keys, so an answer given up front is never
asked again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Answers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    goal: str | None = None
    target: str | None = None
    task: Literal["auto", "binary", "multiclass", "regression"] | None = None
    metric: str | None = None
    positive_class: str | None = None
    cost_fp: float | None = Field(None, ge=0)
    cost_fn: float | None = Field(None, ge=0)
    time_column: str | None = None
    group_column: str | None = None
    segment_columns: list[str] | None = None
    sensitive_columns: list[str] | None = None
    id_columns: list[str] | None = None
    latency_ms: float | None = Field(None, gt=0)
    interpretability: Literal["low", "medium", "high"] | None = None
    time_budget: float | None = Field(None, gt=0)

    def given(self) -> dict[str, Any]:
        """Only the keys somebody actually answered."""
        return self.model_dump(exclude_none=True)

    def merged(self, other: "Answers | dict[str, Any] | None") -> "Answers":
        extra = other.given() if isinstance(other, Answers) else {k: v for k, v in (other or {}).items() if v is not None}
        return Answers.model_validate({**self.given(), **extra})


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


def parse_answers(data: dict[str, Any], source: str = "answers") -> Answers:
    unknown = [k for k in data if k not in ANSWER_KEYS]
    if unknown:
        raise BadInput(f"{source}: unknown key(s) {', '.join(map(str, unknown))}; known keys: {', '.join(ANSWER_KEYS)}")
    try:
        return Answers.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise BadInput(f"{source}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
