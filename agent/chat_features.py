"""`dsagent chat`: "add debt_ratio = debt / income" (or "add feature ...", "add derived feature
...") declares a derived feature, through the same parser and column checks as the answers key
`derived_features` (dsagent.tools.derived: ast and re only, never eval).

Where it goes depends on how far the work is:
  - before training (the usual case) it joins the session's answers: define_task puts it in the
    task and the autopilot (or Claude, which is told) measures it with engineer_features;
  - after an offline run finished, the finished session stays as it is and a new one runs on the
    same data with the feature added (the chat's follow-up re-run).
A feature that cannot be accepted is one line saying why; nothing is added.

Kept out of agent/chat.py so the chat module stays about the terminal.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dsagent.chat import Chat

# "add x = a / b", "add feature x = ...", "add a derived feature: x = ...", "please add ..."
PHRASE = re.compile(r"^\s*(?:please\s+)?add\s+(?:(?:a|the|one)\s+)?(?:new\s+)?(?:derived\s+)?(?:feature\s*:?\s+)?"
                    r"(?P<feature>[^\s=`]+\s*=(?!=).*)$", re.IGNORECASE | re.DOTALL)


def feature_phrase(text: str) -> str | None:
    """The `name = expression` an "add ..." message declares, or None when the message is not one."""
    m = PHRASE.match(text or "")
    return m.group("feature").strip() if m else None


def add_feature(chat: "Chat", feature: str) -> None:
    from dsagent.tools.derived import DerivedError, check_features

    run = chat.run
    assert run is not None
    answers = run.state.answers
    existing = list(answers.get("derived_features") or [])
    try:
        parsed = check_features(existing + [feature], chat.columns, target=answers.get("target"),
                                time_column=answers.get("time_column") or None)[-1]
    except DerivedError as exc:
        chat.error(f"{exc}; nothing was added")
        return
    features = existing + [feature]
    if chat._offline_finished():
        chat.say(f"Adding {parsed.name} = {parsed.expression} means training again: a new session with it.", style="")
        chat._rerun({"derived_features": features})
        return
    answers["derived_features"] = features
    run.session.append({"type": "derived_feature", "feature": feature})
    run.session.update(answers={**(run.session.meta.get("answers") or {}), "derived_features": features})  # kept on resume
    chat.say(f"Added derived feature {parsed.name} = {parsed.expression} (computed inside the model's Pipeline from raw "
             "columns; its cross-validated effect is measured before training).", style="")
