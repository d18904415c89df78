"""Askers answer ask_user: from answers given up front, from stated defaults, or by pausing.

Policy (see DESIGN.md): `assume` proceeds on stated defaults and records each as an assumption;
`ask` pauses with needs_input. The chat surface has its own terminal Asker.

"Use your judgement" (an answer, the goal's own words, or on_questions="assume") is one rule on
every surface (`judge`): the stated default with its reason; for the target, which has no default,
the column the goal or the data make the clear choice, with the reasoning; when none is, one line
says why and lists the options (NoClearChoice), never a silent None.
"""

from __future__ import annotations

from typing import Any

from dsagent.loop import LoopState, NeedsInput

from dsagent.answers import is_judgement as _is_judgement_phrase


def is_judgement(value: Any, key: str | None = None) -> bool:
    return value is None or value == "" or _is_judgement_phrase(value, key)


class NoClearChoice(ValueError):
    """Judgement cannot choose (no column is the clear target): the message says why and lists the options."""


def judge(q: dict[str, Any], goal: str | None, columns: list[str] | None) -> tuple[Any, str]:
    """(value, reasoning) for a question left to judgement; NoClearChoice when no choice is defensible."""
    if q.get("default") is not None or q.get("key") != "target":
        why = q.get("why")
        return q.get("default"), f"the stated default{': ' + why if why else ''}"
    from dsagent.goal import clear_target

    column, why = clear_target(goal, list(columns or q.get("options") or []))
    if column is None:
        raise NoClearChoice(f"no column is the clear target: {why}")
    return column, why


def _columns(state: LoopState) -> list[str] | None:
    from dsagent.goal import data_columns

    return data_columns(state.session.data_path)


class AssumeAsker:
    """Scripted runs: answers file first, then judgement (the question's default, or the clear
    target), recorded as an assumption. With no defensible target the run stops on one line
    saying why, with the options (state.stopped becomes the run's error)."""

    def __init__(self, given: dict[str, Any] | None = None):
        self.given = dict(given or {})

    def ask(self, questions: list[dict[str, Any]], state: LoopState) -> dict[str, Any]:
        answers: dict[str, Any] = {}
        for q in questions:
            key = q["key"]
            if key in self.given and not is_judgement(self.given[key], key):
                answers[key] = self.given[key]
            elif key in state.answers:
                answers[key] = state.answers[key]
            else:
                try:
                    answers[key], why = judge(q, state.answers.get("goal"), _columns(state))
                except NoClearChoice as exc:
                    state.stopped = f"{exc}; pass target=COL (--target COL)"
                    continue
                state.assumptions.append(f"{key} = {answers[key]!r}: assumed, not asked ({why})")
        return answers


class PauseAsker:
    """Sub-agent mode: answer what is known or left to judgement (by an answer, or by the goal:
    "use your judgement on anything you need to ask"); otherwise pause and hand the questions back.
    A target left to judgement that no column clearly fits is handed back too, its `why` saying so."""

    def __init__(self, given: dict[str, Any] | None = None, *, judge_all: bool = False):
        self.given = dict(given or {})
        self.judge_all = judge_all

    def ask(self, questions: list[dict[str, Any]], state: LoopState) -> dict[str, Any]:
        known = {**state.answers, **self.given}
        missing = [q for q in questions if q["key"] not in known and not self.judge_all]
        if missing:
            raise NeedsInput(missing)
        answers: dict[str, Any] = {}
        judged: list[tuple[dict[str, Any], Any, str]] = []
        for q in questions:
            value = known.get(q["key"])
            if not is_judgement(value, q["key"]):
                answers[q["key"]] = value
                continue
            try:
                judged.append((q, *judge(q, state.answers.get("goal"), _columns(state))))
            except NoClearChoice as exc:
                missing.append({**q, "why": f"{exc}; please choose one"})
        if missing:  # nothing judged is recorded yet: the resumed run judges again with the answer given
            raise NeedsInput(missing)
        for q, value, why in judged:
            answers[q["key"]] = value
            state.assumptions.append(f"{q['key']} = {value!r}: left to my judgement ({why})")
        return answers
