"""Askers answer ask_user: from answers given up front, from stated defaults, or by pausing.

Policy (see DESIGN.md): `assume` proceeds on stated defaults and records each as an assumption;
`ask` pauses with needs_input. The chat surface has its own terminal Asker.
"""

from __future__ import annotations

from typing import Any

from dsagent.loop import LoopState, NeedsInput

from dsagent.answers import is_judgement as _is_judgement_phrase


def is_judgement(value: Any) -> bool:
    return value is None or value == "" or _is_judgement_phrase(value)


def _assumption(question: dict[str, Any]) -> str:
    why = f" ({question['why']})" if question.get("why") else ""
    return f"{question['key']} = {question.get('default')!r}: assumed, not asked{why}"


class AssumeAsker:
    """Scripted runs: answers file first, then the question's default, recorded as an assumption."""

    def __init__(self, given: dict[str, Any] | None = None):
        self.given = dict(given or {})

    def ask(self, questions: list[dict[str, Any]], state: LoopState) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for q in questions:
            key = q["key"]
            if key in self.given and not is_judgement(self.given[key]):
                answers[key] = self.given[key]
            elif key in state.answers:
                answers[key] = state.answers[key]
            else:
                answers[key] = q.get("default")
                state.assumptions.append(_assumption(q))
        return answers


class PauseAsker:
    """Sub-agent mode: answer what is known; otherwise pause and hand the questions back."""

    def __init__(self, given: dict[str, Any] | None = None):
        self.given = dict(given or {})

    def ask(self, questions: list[dict[str, Any]], state: LoopState) -> dict[str, Any]:
        known = {**state.answers, **self.given}
        missing = [q for q in questions if q["key"] not in known]
        if missing:
            raise NeedsInput(missing)
        answers: dict[str, Any] = {}
        for q in questions:
            value = known[q["key"]]
            if is_judgement(value):
                answers[q["key"]] = q.get("default")
                state.assumptions.append(_assumption(q))
            else:
                answers[q["key"]] = value
        return answers
