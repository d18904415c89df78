"""`dsagent chat`: the terminal asker, which answers ask_user's questions at the chat prompt."""

from __future__ import annotations

import difflib
import re
import time
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from dsagent.answers import ANSWER_KEYS, BadInput, parse_answers
from dsagent.asking import is_judgement
from dsagent.goal import answer_in_words, clear_target
from dsagent.loop import LoopState

if TYPE_CHECKING:
    from dsagent.chat import Chat

LIST_KEYS = {"segment_columns", "sensitive_columns", "id_columns", "features_at_prediction_time"}
COLUMN_KEYS = {"target", "time_column", "group_column"} | LIST_KEYS


class TerminalAsker:
    """Answers ask_user through the chat prompt: each question with why/options/default; Enter or
    "use your judgement" takes the default (recorded as an assumption); a number picks an option."""

    def __init__(self, chat: "Chat"):
        self.chat = chat
        self.reason: str | None = None  # why my judgement chose what it did (stated with the answer)

    def ask(self, questions: list[dict[str, Any]], state: LoopState) -> dict[str, Any]:
        chat = self.chat
        chat.status.hide()
        started = time.time()
        answers: dict[str, Any] = {}
        try:
            n = len(questions)
            if self._left_to_me():
                chat.print(Text(f"{n} question{'s' if n > 1 else ''}, left to my judgement as you asked:", style="dim"))
            else:
                chat.print(Text(f"{n} question{'s' if n > 1 else ''}: Enter takes the default; "
                                "\"use your judgement\" leaves it to me.", style="dim"))
            for i, q in enumerate(questions, 1):
                judged = self._judged(q, state) if self._left_to_me() else None
                answers[q["key"]] = judged[0] if judged else self._one(q, i, n, state)
        finally:
            state.deadline += time.time() - started  # waiting for the person is not work time
        return answers

    def _left_to_me(self) -> bool:
        run = getattr(self.chat, "run", None)
        return bool(run is not None and run.leave_to_judgement)

    def _goal(self) -> str | None:
        run = getattr(self.chat, "run", None)
        return run.state.answers.get("goal") if run is not None else None

    def _judged(self, q: dict[str, Any], state: LoopState) -> tuple[Any] | None:
        """The person left every question to me: (the default,) or, for the target, (the clear
        choice,), stated with the reason; None when no choice is defensible (then it is asked)."""
        try:
            value, _ = self.parse(q, "use your judgement")
        except ValueError as exc:
            self.chat.print(Text(f"  {q['key']}: {exc}", style="yellow"))
            return None
        self._record(q, value, state)
        return (value,)

    def _record(self, q: dict[str, Any], value: Any, state: LoopState) -> None:
        why = self.reason or q.get("why")
        state.assumptions.append(f"{q['key']} = {value!r}: left to my judgement by the user" + (f" ({why})" if why else ""))
        self.chat.print(Text(f"  → {q['key']} = {value!r} (assumed{': ' + self.reason if self.reason else ''})", style="dim"))
        self.reason = None

    def _show(self, q: dict[str, Any], i: int, n: int) -> None:
        chat = self.chat
        head = Text()
        head.append(f"[{i}/{n}] ", style="bold cyan")
        head.append(str(q.get("question", "")), style="bold")
        head.append(f"  ({q['key']})", style="dim")
        chat.print(head)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(justify="right", style="dim", min_width=13)
        grid.add_column()
        if q.get("why"):
            grid.add_row("why:", Text(str(q["why"]), style="dim"))
        if q.get("options"):
            grid.add_row("options:", Text("  ".join(f"{k}) {o}" for k, o in enumerate(q["options"], 1))))
        default = q.get("default")
        shown = ("none: please answer" if self._required(q) else "no preference") if default is None else str(default)
        grid.add_row("default:", Text(shown, style="dim"))
        chat.print(grid)

    @staticmethod
    def _required(q: dict[str, Any]) -> bool:
        return q.get("key") == "target" and q.get("default") is None

    def _one(self, q: dict[str, Any], i: int, n: int, state: LoopState) -> Any:
        self._show(q, i, n)
        options = [str(o) for o in q.get("options") or []]
        completions = options + ([c for c in self.chat.columns or [] if c not in options] if q["key"] in COLUMN_KEYS else [])
        while True:
            try:
                raw = self.chat.reader.ask("  answer › ", completions)
            except EOFError:  # input ended (a pipe): the defaults stand, as in a scripted run
                raw = ""
                if self._required(q):
                    raise
            try:
                value, assumed = self.parse(q, raw)
            except ValueError as exc:
                self.chat.print(Text(f"  {exc}", style="yellow"))
                continue
            break
        if assumed:
            self._record(q, value, state)
        else:
            self.chat.print(Text(f"  → {q['key']} = {value!r}", style="dim"))
        return value

    def parse(self, q: dict[str, Any], raw: str) -> tuple[Any, bool]:
        key, text = q["key"], raw.strip()
        options = [str(o) for o in q.get("options") or []]
        if is_judgement(text, key):
            if self._required(q):
                column, why = clear_target(self._goal(), self.chat.columns or [])
                if column is None:
                    raise ValueError(f"No column is the clear choice: {why}. Type a column name (Tab completes) or its number.")
                self.reason = why
                return column, True
            return q.get("default"), True
        if text.isdigit() and options and 1 <= int(text) <= len(options):
            text = options[int(text) - 1]
        # Words first: "two minutes", "$120", yes / no, an option's name in any case.
        value: Any = answer_in_words(key, text, options, q.get("default"))
        text = value if isinstance(value, str) else text
        cols = self.chat.columns or []
        if not isinstance(value, str) or (key == "features_at_prediction_time" and value.lower() == "all"):
            pass  # a number, a list of the offered columns, [] for "no", or "all"
        elif key in LIST_KEYS:
            value = [self._column(v, cols, key) for v in re.split(r"[,\s]+", text) if v]
        elif key in COLUMN_KEYS and text.lower() not in ("no", "none"):
            value = self._column(text, cols, key)
        elif key in ("time_column", "group_column"):
            value = "no" if key == "time_column" else None
        if key in ANSWER_KEYS and value is not None:
            try:
                value = parse_answers({key: value}, source="answer").given()[key]
            except BadInput as exc:
                raise ValueError(f"{str(exc).removeprefix('answer: ')}; try again") from None
        return value, False

    @staticmethod
    def _column(text: str, cols: list[str], key: str) -> str:
        if not cols or text in cols:
            return text
        by_lower = {c.lower(): c for c in cols}
        if text.lower() in by_lower:
            return by_lower[text.lower()]
        close = difflib.get_close_matches(text, cols, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; Tab completes column names"
        raise ValueError(f"{text!r} is not a column of the data{hint}")
