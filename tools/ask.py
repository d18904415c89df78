"""ask_user: structured clarifying questions. Declared here like every tool (one schema for
Claude, MCP and the autopilot) but answered by the loop's Asker, not by a worker."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from dsagent.answers import ANSWER_KEYS
from dsagent.tools.registry import tool

MAX_QUESTIONS = 6


# The schema enumerates the answers keys: a question on any other key could be stored but never
# answered (answers files, MCP answer_questions and --resume accept only these keys).
AnswerKey = Literal[tuple(ANSWER_KEYS)]  # type: ignore[valid-type]


class ClarifyingQuestion(BaseModel):
    key: AnswerKey = Field(description="the answers key this settles; `note` for anything that fits no other key "
                                       "(free text, kept on record)")
    question: str = Field(description="the question, in plain words")
    why: str = Field("", description="why the answer changes what you will build")
    options: list[str] = Field(default_factory=list, description="suggested answers, if any")
    default: Any = Field(None, description="what you will assume if the user has no preference")


@tool(runs_in_loop=True)
def ask_user(questions: list[ClarifyingQuestion] = Field(..., min_length=1, max_length=MAX_QUESTIONS)) -> dict:
    """Ask the user clarifying questions, all together, before expensive work.

    Ask only what changes the work (goal and success metric, cost of false positives vs false
    negatives, time or group structure, columns unavailable at prediction time, latency,
    interpretability). Each question names the answers key it settles and a default; the user may
    answer "use your judgement", in which case the default is used and recorded as an assumption.
    """
    raise RuntimeError("ask_user is answered by the agent loop, not executed as a tool")
