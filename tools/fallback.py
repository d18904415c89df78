"""The answers key `fallback`: what `dsagent serve` answers for a row the model cannot score.

Recorded in the model card at training time and used by dsagent.tools.service (each such row is
counted and listed). A classifier's fallback must be one of its classes and a regressor's a
number; anything else is ignored with a note (null is answered), because a made-up class would
be worse than an honest null.
"""

from __future__ import annotations

from typing import Any


def normalize(value: Any, task: str, classes: list[Any] | None) -> tuple[Any, str | None]:
    """(the fallback as the model's output type, or None; a note when the given one was unusable)."""
    from dsagent.tools.task_types import prediction_of  # a plugin task names itself; its output has a shape

    if value is None:
        return None, None
    if prediction_of(task) == "regression":
        try:
            return float(value), None
        except (TypeError, ValueError):
            return None, f"fallback {value!r} is not a number; rows the model cannot score get null"
    text = str(value)
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))  # 1.0 from a YAML/JSON number means the class "1"
    for c in classes or []:
        if str(c) == text:
            return c, None
    return None, (f"fallback {value!r} is not one of the classes ({', '.join(map(str, (classes or [])[:10]))}); "
                  "rows the model cannot score get null")


def card_lines(answers: dict[str, Any], task: dict[str, Any]) -> list[str]:
    """The model card's section on rows the model cannot score."""
    value, note = normalize(answers.get("fallback"), task["task"], task.get("classes"))
    lines = ["## When the model cannot score a row", ""]
    if value is not None:
        lines.append(f"- `dsagent serve` answers the fallback `{value}` (answers key `fallback`) for such a row, "
                     "marks it in `fallback_rows` of the response and counts it in `dsagent_fallback_rows`.")
    else:
        lines.append(f"- {note}." if note else "- No fallback answer was given (answers key `fallback`): `dsagent serve` "
                     "answers null for such a row, lists it in `fallback_rows` and counts it.")
    return lines + ["- A batch the model rejects as a whole is scored row by row first, so one bad row never fails "
                    "the others.", ""]
