"""RunResult: the `--json` output, the MCP `task_result` and the Python API's return value."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from dsagent.tools import paths


class Question(BaseModel):
    key: str  # an Answers key
    question: str
    why: str = ""
    options: list[str] = Field(default_factory=list)
    default: Any = None


class Answer(BaseModel):
    """One answers key as the run used it, and where it came from: given (argument, answers file,
    the person in chat), understood (from the goal in words) or assumed (a stated default)."""

    value: Any
    source: Literal["given", "understood", "assumed"]


class Usage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    model: str | None = None


class RunResult(BaseModel):
    status: Literal["completed", "needs_input", "failed"]
    session_id: str
    session_dir: str
    questions: list[Question] = Field(default_factory=list)
    task: str | None = None
    target: str | None = None
    metric: str | None = None
    test_score: float | None = None
    test_ci: tuple[float, float] | None = None
    baseline_score: float | None = None
    best_model: str | None = None
    leaderboard: list[dict[str, Any]] = Field(default_factory=list)
    artifacts: dict[str, str | None] = Field(default_factory=dict)
    assumptions: list[str] = Field(default_factory=list)
    recommendations: list[str] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    elapsed_s: float = 0.0
    error: str | None = None
    answers: dict[str, Answer] = Field(default_factory=dict)
    # Against the answers' min_useful_score: {"decision": go | no-go | uncertain, "min_useful_score",
    # "test_score", "test_ci", "reason"}; null when no minimum was given.
    verdict: dict[str, Any] | None = None

    def assumptions_file(self) -> str:
        """Where the run's assumptions are listed: the report, or session.json when none was written."""
        return "report.md" if self.artifacts.get("report") else "session.json"

    def not_written(self) -> list[str]:
        """The documents a completed run should leave but did not (a run stopped by its time budget
        before them, or a step that failed): empty for any other status."""
        if self.status != "completed":
            return []
        return [name for name in DOCUMENTS if name in self.artifacts and not self.artifacts[name]]


# What every completed run leaves beside the model; `dsagent run --resume` writes what is missing.
DOCUMENTS = ("report", "model_card", "notebook", "monitoring")


def written_documents(artifacts_dir: Path) -> list[str]:
    """The documents a run's closing message may point to that exist, in the order it names them
    (a failed write_report leaves no report to point to)."""
    names = (paths.REPORT, paths.MODEL_CARD, paths.MONITORING_MD, paths.NOTEBOOK)
    return [name for name in names if (artifacts_dir / name).exists()]


def named_list(names: list[str]) -> str:
    """"a", "a and b", "a, b and c"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
