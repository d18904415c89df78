"""`dsagent chat`: the interactive terminal surface.

One class (`Chat`) owns the prompt and the rich Console; `/xxx` commands are `cmd_xxx` methods
(Aider's habit). This is the only module that imports prompt_toolkit.

How a chat maps onto a Run: a `ChatRun` is a Run that takes several user turns. Each message is
appended to the conversation and the transcript, then the loop runs until the backend ends its
turn. The time budget is a budget of work: the clock stops while the chat waits for the person
(at the prompt or on a clarifying question), so reading and typing never starve the training.

Ctrl-C during a turn stops the worker and drops the unfinished step (the transcript records it as
interrupted); the session stays usable and Enter continues. A second Ctrl-C, or Ctrl-D, at the
prompt exits and prints how to resume.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.table import Table
from rich.text import Text

from dsagent import runtime
from dsagent.answers import ANSWER_KEYS, Answers, BadInput, cli_answers, load_answers, parse_answers
from dsagent.asking import is_judgement
from dsagent.goal import answer_in_words, clear_target, data_columns
from dsagent.chat_render import (MarkdownStream, StatusLine, code, fmt_seconds, fmt_tokens, leaderboard_table, markdown,
                               notebook_view, one_line, profile_notes, profile_table, summary_table)
from dsagent.loop import Event, LoopState
from dsagent.runtime import Run, RunOptions
from dsagent.session import read_transcript
from dsagent.tools import paths

STEPS_PER_TURN = 40
COLUMNS_READ_LIMIT = 200 * 2**20  # bytes: larger files are not read in the chat process just for completion
LIST_KEYS = {"segment_columns", "sensitive_columns", "id_columns", "features_at_prediction_time"}
COLUMN_KEYS = {"target", "time_column", "group_column"} | LIST_KEYS

KEYS_HELP = """\
Enter            send the message (or accept the default answer to a question)
Esc Enter        new line (Alt+Enter in most terminals); pasted text keeps its newlines
Tab              complete /commands, column names, artifact names and paths
Up / Down        previous messages (history is kept in {history})
Ctrl-C           interrupt the running step; at the prompt, press twice to exit
Ctrl-D           exit (on an empty line)"""

SHOW_NAMES = {
    "report": paths.REPORT, "model_card": paths.MODEL_CARD, "card": paths.MODEL_CARD, "monitoring": paths.MONITORING_MD,
    "leaderboard": paths.LEADERBOARD, "profile": paths.PROFILE, "notebook": paths.NOTEBOOK, "evaluation": paths.EVALUATION,
    "task": paths.TASK, "tuning": paths.TUNING, "explanation": paths.EXPLANATION,
}


class Quit(Exception):
    """Raised by /quit."""


# ---------------------------------------------------------------------------------- the run


def _unfinished_turn(events: list[dict[str, Any]]) -> tuple[list[str], str] | None:
    """The last assistant turn's tool calls when they never got (usable) results: the same rule
    Run._conversation applies when it drops that turn on resume."""
    last: dict[str, Any] | None = None
    first_results: list[dict[str, Any]] | None = None
    for e in events:
        if e.get("type") == "assistant":
            last, first_results = e, None
        elif e.get("type") == "tool_results" and last is not None and first_results is None:
            first_results = e.get("results") or []
    if not last or not last.get("tool_calls"):
        return None
    names = [c.get("name", "?") for c in last["tool_calls"]]
    if first_results is None:
        return names, "never finished (the process stopped)"
    kinds = {r.get("kind") for r in first_results}
    if "interrupted" in kinds:
        return names, "was interrupted"
    if "needs_input" in kinds:
        return names, "was waiting for answers"
    return None


class ChatRun(Run):
    """A Run that takes several user turns and stops its clock while the person is thinking."""

    close_worker_after_turn = False  # keep the sandboxed worker warm between turns; closed on exit

    def __init__(self, opts: RunOptions):
        self._events_at_start: list[dict[str, Any]] = []
        self.dropped: tuple[list[str], str] | None = None
        super().__init__(opts)
        # Tool records are numbered by step: continue the numbering of a resumed session.
        self.state.steps = sum(1 for e in self._events_at_start if e.get("type") == "assistant")
        self.turns = 0
        self.interrupt_note: str | None = None
        # Loading the tools took a while; the budget starts with the work, not with the import.
        self._paused_at: float | None = time.time()
        self.state.deadline = self._paused_at + self.budget

    def _conversation(self) -> list[dict[str, Any]]:
        self._events_at_start = list(read_transcript(self.session.transcript_path))
        self.dropped = _unfinished_turn(self._events_at_start)
        return super()._conversation()

    # -- the clock ---------------------------------------------------------------------------
    def _resume_clock(self) -> None:
        if self._paused_at is not None:
            self.state.deadline += time.time() - self._paused_at
            self._paused_at = None

    def _pause_clock(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.time()

    def budget_left(self) -> float:
        now = self._paused_at if self._paused_at is not None else time.time()
        return self.state.deadline - now

    # -- turns ---------------------------------------------------------------------------------
    def has_started(self) -> bool:
        return any(m["role"] == "assistant" for m in self.conversation)

    def send(self, text: str | None) -> Iterator[Event]:
        """Append the person's message (if any) and drive the loop until the backend ends its turn."""
        if text:
            if self.interrupt_note:
                text = f"{self.interrupt_note}\n\n{text}"
            self.interrupt_note = None
            self.conversation.append({"role": "user", "text": text})
            self.session.append({"type": "user", "text": text})
        self.turns += 1
        self.opts.max_steps = self.state.steps + STEPS_PER_TURN
        self.status, self.error, self.questions, self.state.stopped = "running", None, [], None
        self._resume_clock()
        interrupted = False
        try:
            yield from self.events()
        except KeyboardInterrupt:
            interrupted = True
            self._drop_unanswered()
            self.session.append({"type": "interrupted"})
            self.session.update(status="interrupted")
            raise
        finally:
            self._pause_clock()
            if not interrupted:
                self.session.update(status=self.chat_status())

    def _drop_unanswered(self) -> None:
        """After an interrupt the last assistant turn may hold tool calls without results: drop it
        (the transcript keeps it, marked interrupted) so the backend can issue it again."""
        conv = self.conversation
        if conv and conv[-1]["role"] == "assistant" and conv[-1].get("tool_calls"):
            names = [c["name"] for c in conv.pop()["tool_calls"]]
            self.interrupt_note = f"(I interrupted your last step, {', '.join(names)}; it was cancelled.)"
        else:
            self.interrupt_note = "(I interrupted your last reply.)"

    def backend_failed(self) -> bool:
        usual = {"interrupted", self.state.stopped, (self.state.final_text or "the run ended without an evaluated model")[:500]}
        return bool(self.error) and self.error not in usual

    def chat_status(self) -> str:
        if self.status == "completed":
            return "completed"
        if self.error == "interrupted":
            return "interrupted"
        return "failed" if self.backend_failed() else "open"

    # -- switching -----------------------------------------------------------------------------
    def switch(self, persona: str | None = None, model: str | None = None) -> None:
        from dsagent.tools.registry import all_tools

        if persona:
            registry = all_tools()
            self.persona = runtime._load_persona(persona, list(registry))
            self.tools = {name: spec for name, spec in registry.items() if name in set(self.persona.tools)}
            self.runner.tools = self.tools
            self.opts.persona = persona
        if model:
            self.opts.model = model
        self.backend = runtime.make_backend(self.backend_name, self.opts, self.persona,
                                            self.state.answers.get("target") or self.answers.target)
        self.session.update(persona=self.persona.name, model=getattr(self.backend, "model", None))

    def usage(self) -> tuple[int, int, float | None]:
        u = self.state.usage
        cost = None
        if self.backend_name == "claude":
            from dsagent.backends.config import cost_usd

            cost = cost_usd(getattr(self.backend, "model", None), u)
        return int(u.get("input_tokens", 0)), int(u.get("output_tokens", 0)), cost


# ------------------------------------------------------------------------------ line readers


class PromptReader:
    """prompt_toolkit input: history file, multi-line editing, completion, a bottom toolbar."""

    def __init__(self, history_path: Path | None, completer, toolbar: Callable[[], str] | None, plain: bool,
                 input=None, output=None):
        from prompt_toolkit import PromptSession
        from prompt_toolkit.filters import Condition
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.key_binding import KeyBindings
        from prompt_toolkit.output.color_depth import ColorDepth

        kb = KeyBindings()

        @kb.add("enter", eager=True)
        def _send(event) -> None:
            buf = event.current_buffer
            if buf.complete_state and buf.complete_state.current_completion is not None:
                buf.complete_state = None  # Enter in the menu picks the completion; the next Enter sends
                return
            buf.validate_and_handle()

        @kb.add("escape", "enter")
        def _newline(event) -> None:
            event.current_buffer.insert_text("\n")

        history = None
        if history_path is not None:
            try:
                history_path.parent.mkdir(parents=True, exist_ok=True)
                history_path.touch(exist_ok=True)
                history = FileHistory(str(history_path))
            except OSError:
                history = None
        self.history_path = history_path if history is not None else None
        depth = ColorDepth.DEPTH_1_BIT if plain else None
        self.session = PromptSession(
            history=history or InMemoryHistory(), multiline=True, key_bindings=kb, completer=completer,
            complete_while_typing=Condition(lambda: self.session.default_buffer.text.startswith("/")),
            bottom_toolbar=toolbar if (toolbar and not plain) else None, prompt_continuation=lambda w, n, s: "… ".rjust(w),
            input=input, output=output, color_depth=depth, enable_suspend=True)
        self.questions = PromptSession(history=InMemoryHistory(), input=input, output=output, color_depth=depth,
                                       complete_while_typing=True)

    def read(self, message: str) -> str:
        return self.session.prompt(message)

    def ask(self, message: str, options: list[str]) -> str:
        from prompt_toolkit.completion import WordCompleter

        completer = WordCompleter(options, ignore_case=True, sentence=True) if options else None
        return self.questions.prompt(message, completer=completer)


class StdinReader:
    """Plain lines from stdin (a pipe or a file): no editing, no prompt_toolkit."""

    def __init__(self, console: Console, stream=None):
        self.console = console
        self.stream = stream or sys.stdin
        self.echo = not (hasattr(self.stream, "isatty") and self.stream.isatty())
        self.history_path = None

    def _line(self, message: str) -> str:
        self.console.file.write(message)
        self.console.file.flush()
        line = self.stream.readline()
        if not line:
            self.console.file.write("\n")
            raise EOFError
        line = line.rstrip("\r\n")
        if self.echo:  # piped input is not echoed by a terminal: keep the log readable
            self.console.file.write(line + "\n")
            self.console.file.flush()
        return line

    def read(self, message: str) -> str:
        return self._line(message)

    def ask(self, message: str, options: list[str]) -> str:
        return self._line(message)


# ------------------------------------------------------------------------------- completion


def _make_completer(chat: "Chat"):
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document

    path_completer = PathCompleter(expanduser=True)

    class ChatCompleter(Completer):
        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            if text.startswith("/") and " " not in text:
                for name, (_, desc) in Chat.COMMANDS.items():
                    if name.startswith(text[1:].lower()):
                        yield Completion("/" + name, start_position=-len(text), display_meta=desc)
                return
            m = re.match(r"/(\w+)\s+(.*)$", text, re.S)
            if m:
                cmd, arg = m.group(1), m.group(2)
                if cmd == "data":
                    sub = Document(arg, cursor_position=len(arg))
                    yield from path_completer.get_completions(sub, complete_event)
                    return
                choices = {"show": chat.show_names, "persona": chat.persona_names}.get(cmd)
                if choices:
                    for name in choices():
                        if name.startswith(arg):
                            yield Completion(name, start_position=-len(arg))
                    return
            word = re.search(r"[\w.\-]*$", text).group(0)  # type: ignore[union-attr]
            if not word:
                return
            low = word.lower()
            cols = chat.columns or []
            ranked = [c for c in cols if c.lower().startswith(low)] + [c for c in cols if low in c.lower() and not c.lower().startswith(low)]
            for col in ranked:
                yield Completion(col, start_position=-len(word), display_meta="column")

    return ChatCompleter()


# ------------------------------------------------------------------------------------ asker


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
        if is_judgement(text):
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


# ------------------------------------------------------------------------------------- chat


def _columns_of(run: Run | None) -> list[str] | None:
    """Column names, cheaply: the saved profile if there is one, else the file itself."""
    if run is None:
        return None
    prof = run.session.artifacts_dir / paths.PROFILE
    if prof.exists():
        try:
            return [c["name"] for c in json.loads(prof.read_text()).get("columns", [])]
        except (OSError, ValueError, KeyError):
            pass
    # A big file is read once, by profile_data; its columns come from profile.json.
    return data_columns(run.session.data_path, limit=COLUMNS_READ_LIMIT)


class Chat:
    COMMANDS: dict[str, tuple[str, str]] = {
        "help": ("", "commands and key bindings"),
        "data": ("PATH [TARGET]", "load a dataset (starts a new session)"),
        "profile": ("", "the data profile as a table (profiles the data if needed)"),
        "status": ("", "session, backend, budget, tokens, cost"),
        "artifacts": ("", "files the session produced, with paths"),
        "show": ("NAME", "render report, model_card, leaderboard, profile, notebook, a plot..."),
        "persona": ("[NAME]", "show or switch the persona"),
        "model": ("[ID]", "show or switch the Claude model"),
        "budget": ("[SECONDS]", "show the time budget, or add SECONDS to it"),
        "save": ("", "save now and export the conversation to chat.md"),
        "quit": ("", "leave (the session stays resumable)"),
    }
    ALIASES = {"exit": "quit", "q": "quit", "h": "help", "?": "help"}

    def __init__(self, opts: RunOptions, *, plain: bool = False, console: Console | None = None, reader=None,
                 run_factory: Callable[[RunOptions], ChatRun] | None = None, debug: bool = False,
                 input=None, output=None, history_path: Path | None = None):
        self.opts = opts
        self.plain = plain
        self.debug = debug
        self.console = console or Console(highlight=False, no_color=plain, color_system=None if plain else "auto",
                                          emoji=not plain, soft_wrap=plain)
        self.run_factory = run_factory or ChatRun
        self.run: ChatRun | None = None
        self.columns: list[str] | None = None
        self._columns_thread: threading.Thread | None = None
        self.status = _PlainStatus(self) if plain else StatusLine(self.console, self.footer)
        self.stream: MarkdownStream | None = None
        self.armed_exit = False
        self.shown_result_mtime: float | None = None
        self.sessions_dir = Path(opts.sessions_dir) if opts.sessions_dir else runtime.default_sessions_dir()
        if reader is None:
            if sys.stdin.isatty() and sys.stdout.isatty() or input is not None:
                hist = history_path or self._history_path()
                reader = PromptReader(hist, _make_completer(self), self.toolbar, plain, input=input, output=output)
            else:
                reader = StdinReader(self.console)
        self.reader = reader
        opts.asker = TerminalAsker(self)
        opts.on_questions = "ask"

    def _history_path(self) -> Path:
        candidate = self.sessions_dir / ".chat_history"
        try:
            self.sessions_dir.mkdir(parents=True, exist_ok=True)
            return candidate if os.access(self.sessions_dir, os.W_OK) else Path.home() / ".dsagent_history"
        except OSError:
            return Path.home() / ".dsagent_history"

    # -- output helpers -------------------------------------------------------------------------
    def print(self, *things: Any, **kw: Any) -> None:
        self.console.print(*things, **kw)

    def say(self, text: str, style: str = "dim") -> None:
        self.console.print(Text(text, style="" if self.plain else style))

    def error(self, text: str) -> None:
        self.console.print(Text(f"error: {text}", style="" if self.plain else "bold red"))

    def footer(self) -> str:
        run = self.run
        if run is None:
            return "no data loaded"
        tin, tout, cost = run.usage()
        left = run.budget_left()
        budget = f"budget {fmt_seconds(left)} left" if left > 0 else f"budget over by {fmt_seconds(-left)}"
        if run.backend_name == "offline":
            return budget  # the autopilot spends no tokens
        tokens = f"tokens {fmt_tokens(tin)} in/{fmt_tokens(tout)} out" + (f" ${cost:.3f}" if cost is not None else "")
        return f"{budget} · {tokens}"

    def toolbar(self) -> str:
        run = self.run
        head = f" {run.session.id} · {run.backend_name}" if run else " dsagent"
        return f"{head} · {self.footer()} · /help · Esc Enter: newline · Ctrl-D: exit "

    def prompt_message(self):
        if self.plain:
            return "you> "
        from prompt_toolkit.formatted_text import FormattedText

        return FormattedText([("ansibrightcyan bold", "you › ")])

    # -- session management ---------------------------------------------------------------------
    def open(self, opts: RunOptions) -> bool:
        try:
            run = self.run_factory(opts)
        except BadInput as exc:
            self.error(str(exc))
            return False
        except Exception as exc:  # e.g. an unreadable file: say so, keep the current session
            if self.debug:
                raise
            self.error(f"{type(exc).__name__}: {exc}")
            return False
        if self.run is not None:
            self.run.runner.close()
        self.run = run
        self.columns = None
        self.shown_result_mtime = self._evaluation_mtime()
        self._columns_thread = threading.Thread(target=self._load_columns, args=(run,), daemon=True)
        self._columns_thread.start()
        return True

    def _load_columns(self, run: ChatRun) -> None:
        cols = _columns_of(run)
        if self.run is run:
            self.columns = cols

    def _evaluation_mtime(self) -> float | None:
        if self.run is None:
            return None
        p = self.run.session.artifacts_dir / paths.EVALUATION
        return p.stat().st_mtime if p.exists() else None

    def welcome(self) -> None:
        run = self.run
        title = Text("dsagent chat", style="bold")
        if run is None:
            self.print(title)
            self.say("No data yet: load a CSV/Parquet/Excel/JSON-lines file with /data PATH (Tab completes paths). "
                     "/help lists commands.", style="")
            return
        backend = "offline autopilot" if run.backend_name == "offline" else f"claude ({getattr(run.backend, 'model', '?')})"
        title.append(f" · {backend} · persona {run.persona.name} · budget {fmt_seconds(run.budget)}", style="")
        self.print(title)
        self.say(f"session {run.session.id}  ({run.session.dir})")
        if self.opts.backend == "auto" and run.backend_name == "offline":
            self.say("No ANTHROPIC_API_KEY set: the offline autopilot runs the data-scientist workflow step by step; "
                     "it asks its questions here, and once it has finished it answers questions about its work from the "
                     "session's files.")
        if self._columns_thread is not None:
            self._columns_thread.join(timeout=5)
        data = run.session.data_path
        if data is not None:
            cols = self.columns
            shown = ", ".join(cols[:12]) + (f", … ({len(cols)} columns)" if len(cols) > 12 else "") if cols else "?"
            self.print(Text.assemble(("data ", "bold"), f"{data.name}: ", (shown, "")))
        if self.opts.resume:
            self._replay()
            return
        target = run.state.answers.get("target")
        hint = (f"Target: {target}. " if target else "") + (
            "Press Enter to start (profile → questions → train → tune → evaluate → report), or describe your goal first.")
        self.say(hint, style="")
        self.say("/help for commands · Esc Enter for a new line · Ctrl-C interrupts a step")

    def _replay(self) -> None:
        run = self.run
        assert run is not None
        recent = [m for m in run.conversation if m["role"] in ("user", "assistant") and m.get("text")][-6:]
        if recent:
            self.say(f"resumed: {len(run.conversation)} messages rebuilt from transcript.jsonl; the last few:")
        for m in recent:
            who = "you" if m["role"] == "user" else "dsagent"
            text = m["text"] if len(m["text"]) < 600 else m["text"][:600] + " …"
            self.print(Text.assemble((f"{who}: ", "bold"), text))
        if run.dropped:
            names, why = run.dropped
            self.print(Text(f"The last step ({', '.join(names)}) {why}: it was cancelled and is not in the rebuilt "
                            "conversation. Press Enter to let the agent issue it again, or type a message.",
                            style="" if self.plain else "yellow"))
        elif (run.session.artifacts_dir / paths.EVALUATION).exists():
            self.say("This session's model is built: /show report, /artifacts, or ask about it (\"how good is it?\").", style="")
        else:
            self.say("Press Enter to continue, or type a message.", style="")

    # -- the loop -----------------------------------------------------------------------------
    def loop(self) -> int:
        self.welcome()
        while True:
            try:
                text = self.reader.read(self.prompt_message())
            except KeyboardInterrupt:
                if self.armed_exit:
                    break
                self.armed_exit = True
                self.say("(Ctrl-C again or Ctrl-D to exit)")
                continue
            except EOFError:
                break
            self.armed_exit = False
            stripped = text.strip()
            try:
                if stripped.startswith("/"):
                    self.command(stripped)
                else:
                    self.turn(text)
            except Quit:
                break
            except KeyboardInterrupt:  # a second Ctrl-C while the first was being handled
                break
        self.goodbye()
        return 0

    def goodbye(self) -> None:
        self.status.hide()
        if self.run is None:
            return
        self.run.runner.close()
        extra = f" --sessions-dir {self.opts.sessions_dir}" if self.opts.sessions_dir else ""
        self.say(f"Session saved in {self.run.session.dir}", style="")
        self.print(Text.assemble("Resume with: ", (f"dsagent chat --resume {self.run.session.id}{extra}", "bold")))

    def turn(self, text: str) -> None:
        run = self.run
        if run is None:
            self.say("No data loaded yet: use /data PATH first.", style="yellow")
            return
        message = text.strip()
        if not message and run.has_started() and run.interrupt_note is None and not run.dropped:
            return  # an empty Enter mid-conversation means nothing
        run.dropped = None
        from dsagent.chat_features import add_feature, feature_phrase

        feature = feature_phrase(message)
        if feature:  # "add x = a / b": a derived feature, not a message to the model
            add_feature(self, feature)
            return
        if message and self._offline_finished():
            self.ask_about(message)
            return
        if message and not run.has_started():
            self._first_message(message)
        gen = run.send(message or None)
        self.status.show("thinking")
        try:
            for event in gen:
                self.render(event)
        except KeyboardInterrupt:
            # The interrupt may have hit our rendering rather than the loop: hand it to the loop
            # so it records the interrupted step and stops the worker.
            try:
                gen.throw(KeyboardInterrupt())
            except (KeyboardInterrupt, StopIteration):
                pass
            self._end_displays()
            self.print(Text("Interrupted: the step was stopped and the session is intact. Enter continues where it "
                            "stopped; Ctrl-C again or Ctrl-D exits.", style="" if self.plain else "yellow"))
            self.armed_exit = True
            return
        except Exception as exc:
            self._end_displays()
            if self.debug:
                raise
            self.error(f"{type(exc).__name__}: {exc} (the session is saved; --debug shows the traceback)")
            return
        finally:
            self._end_displays()
        self._after_turn()

    # -- questions about finished work (offline) -------------------------------------------------
    def _offline_finished(self) -> bool:
        """The autopilot has nothing left to do: its last turn made no tool call and a model is evaluated."""
        run = self.run
        if run is None or run.backend_name != "offline" or not (run.session.artifacts_dir / paths.EVALUATION).exists():
            return False
        last = next((m for m in reversed(run.conversation) if m["role"] == "assistant"), None)
        return run.status == "completed" or (last is not None and not last.get("tool_calls"))

    def ask_about(self, message: str) -> None:
        """Answer from the session's artifacts (agent/about.py); carry out a follow-up after saying what it does."""
        from dsagent.about import ask_about

        run = self.run
        assert run is not None
        reply = ask_about(run.session.dir, message, acting=True)
        run.session.append({"type": "ask_about", "question": message, "intent": reply.intent, "action": reply.action})
        self.print(markdown(reply.text, self.plain))
        for plot in reply.plots if reply.action is None else []:
            self.print(Text.assemble(("plot: ", "bold"), plot), soft_wrap=True)
        if reply.action and reply.action["kind"] == "show":
            self.cmd_show(reply.action["name"])
        elif reply.action and reply.action["kind"] == "rerun":
            self._rerun(reply.action["changes"])

    def _rerun(self, changes: dict[str, Any]) -> None:
        """The simplest honest re-run: a new session on the same data with the changed answers (the
        finished session cannot be re-entered at define_task, and stays as it is)."""
        run = self.run
        assert run is not None
        given = {k: v for k, v in run.state.answers.items() if k in ANSWER_KEYS and v is not None}
        try:
            answers = parse_answers({**given, **changes}, source="follow-up")
        except BadInput as exc:
            self.error(str(exc))
            return
        budget = float(changes.get("time_budget") or run.budget)
        opts = RunOptions(**{**self.opts.__dict__, "data": run.session.data_path, "resume": None, "target": answers.target,
                             "answers": answers, "goal": None, "time_budget": budget, "metric": None})
        opts.asker = TerminalAsker(self)
        old = run.session.id
        if not self.open(opts):
            return
        self.opts = opts
        self.say(f"New session {self.run.session.id} (from {old}); budget {fmt_seconds(budget)}.", style="")
        self.turn("")

    def _first_message(self, message: str) -> None:
        """The first message is the goal: what it says (target, budget, costs, ...) fills the keys
        not already given, and is echoed in one line so the person can correct it."""
        run = self.run
        assert run is not None
        answers = run.state.answers
        if not answers.get("goal"):
            answers["goal"] = message
        understood = run.take_goal(message, self.columns)
        if understood.values or understood.notes or understood.judgement:
            self.say(understood.line(), style="")

    def _end_displays(self) -> None:
        if self.stream is not None:
            try:
                self.stream.finish()
            finally:
                self.stream = None
        self.status.hide()

    def _after_turn(self) -> None:
        run = self.run
        assert run is not None
        if run.backend_failed():
            self.error(str(run.error))
        if run.state.stopped == "time budget exhausted":
            self.say("The time budget is used up: /budget 60 adds a minute, then Enter continues.", style="yellow")
        mtime = self._evaluation_mtime()
        if run.status == "completed" and mtime != self.shown_result_mtime:
            self.shown_result_mtime = mtime
            self.print(summary_table(run.result(), self.plain))
            if run.backend_name == "offline":
                self.say("/show report renders the report · /artifacts lists every file · /data PATH starts on another "
                         "file · Ctrl-D exits")
                self.say("Ask about the work: \"what drives the predictions?\", \"how good is it?\", \"why this "
                         "model?\", \"where is it weak?\"... or a follow-up: \"try again with 5 minutes\", \"use recall "
                         "instead\", \"drop column X\", \"show me the confusion matrix\".")

    # -- events ---------------------------------------------------------------------------------
    def render(self, event: Event) -> None:
        kind, data = event.kind, event.data
        if kind == "text_delta":
            self.status.hide()
            if self.stream is None:
                self.stream = MarkdownStream(self.console, self.plain)
                if self.plain:
                    self.console.file.write("dsagent> ")
                else:
                    self.console.print()  # a blank line before each of the agent's messages: steps read as blocks
            self.stream.feed(data["text"])
        elif kind == "text":
            if self.stream is not None:
                self._end_displays()
            else:
                self.status.hide()
                self.print(markdown(data["text"], self.plain))
        elif kind == "tool_start":
            self._end_displays()
            if data["name"] != "ask_user":
                self.status.show(data["name"], "starting")
        elif kind == "tool_progress":
            self.status.progress(str(data.get("message") or ""), data.get("fraction"))
        elif kind == "tool_end":
            self._end_displays()
            self._tool_end(data)
            self.status.show("thinking")
        elif kind == "notice":
            self._end_displays()
            self.say(f"note: {data.get('message')}", style="yellow")
        elif kind == "needs_input":
            self._end_displays()
            for q in data.get("questions", []):
                self.say(f"question ({q.get('key')}): {q.get('question')}", style="yellow")
        elif kind == "done":
            self._end_displays()

    def _tool_end(self, data: dict[str, Any]) -> None:
        name, secs = data["name"], data.get("seconds") or 0.0
        if data.get("ok"):
            mark = ("ok", "") if self.plain else ("✓", "green")
            if name == "ask_user":
                return  # the answers were echoed as they were given
            line = Text.assemble("  ", mark, " ", (name, "bold"), f" {secs:.1f}s  ")
            line.append(one_line(data.get("summary")), style="dim")
            self.print(line)
            self._tool_details(name, data.get("summary"))
        else:
            mark = ("FAILED", "") if self.plain else ("✗", "red")
            self.print(Text.assemble("  ", mark, " ", (name, "bold"), f": {str(data.get('error'))[:400]}"))

    def _tool_details(self, name: str, summary: Any = None) -> None:
        """What deserves more than one line: the profile and the leaderboard as tables."""
        art = self.run.session.artifacts_dir  # type: ignore[union-attr]
        try:
            if name == "profile_data" and (art / paths.PROFILE).exists():
                prof = json.loads((art / paths.PROFILE).read_text())
                self.columns = [c["name"] for c in prof.get("columns", [])] or self.columns
                self.print(profile_table(prof, self.plain, limit=25))
                for note in profile_notes(prof):
                    self.say(f"  {note}")
            elif name in ("train_models", "tune_model") and (art / paths.LEADERBOARD).exists():
                rows = json.loads((art / paths.LEADERBOARD).read_text())
                self.print(leaderboard_table(rows, self.plain, top=8))
                skipped = summary.get("skipped") if isinstance(summary, dict) else None
                if skipped:
                    self.say(f"  not compared: {', '.join(map(str, skipped))}")
            elif name == "evaluate_model" and (art / paths.EVALUATION).exists():
                ev = json.loads((art / paths.EVALUATION).read_text())
                ci = ev.get("test_ci")
                self.print(Text.assemble("  test ", (f"{ev.get('metric')} {ev.get('test_score'):.4f}", "bold"),
                                         f"  (95% CI {ci[0]:.4f} to {ci[1]:.4f})" if ci else "",
                                         f"  baseline {ev.get('baseline_score'):.4f}" if ev.get("baseline_score") is not None else ""))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a display problem must not end the turn
            self.say(f"  (could not display {name}'s details: {exc})")

    # -- slash commands -------------------------------------------------------------------------
    def command(self, line: str) -> None:
        name, _, arg = line[1:].partition(" ")
        name = self.ALIASES.get(name.lower(), name.lower())
        if name not in self.COMMANDS:
            close = difflib.get_close_matches(name, list(self.COMMANDS) + list(self.ALIASES), n=1, cutoff=0.4)
            hint = f" Did you mean /{self.ALIASES.get(close[0], close[0])}?" if close else ""
            self.say(f"Unknown command /{name}.{hint} /help lists them.", style="yellow")
            return
        getattr(self, f"cmd_{name}")(arg.strip())

    def _need_run(self) -> "ChatRun | None":
        """The current run, or None after telling the person how to start one."""
        if self.run is None:
            self.say("No session yet: /data PATH loads a dataset.", style="yellow")
        return self.run

    def cmd_help(self, arg: str) -> None:
        table = Table(show_header=False, box=None, padding=(0, 2))
        for name, (args, desc) in self.COMMANDS.items():
            table.add_row(f"/{name} {args}".rstrip(), desc)
        self.print(Text("commands", style="bold"))
        self.print(table)
        hist = getattr(self.reader, "history_path", None)
        self.print(Text("keys", style="bold"))
        self.print(Text(KEYS_HELP.format(history=hist or "memory only")))
        self.say("Anything else you type is sent to the agent. Clarifying questions take Enter for the default, a "
                 "number for an option, or \"use your judgement\".")

    def cmd_quit(self, arg: str) -> None:
        raise Quit

    def cmd_data(self, arg: str) -> None:
        if not arg:
            if (run := self._need_run()) is not None:
                self.say(f"data: {run.session.data_path}  ({len(self.columns or [])} columns)", style="")
            return
        parts = arg.split()
        target = parts[1] if len(parts) > 1 else None
        path = Path(parts[0]).expanduser()
        opts = RunOptions(**{**self.opts.__dict__, "data": path, "resume": None, "target": target,
                             "answers": Answers(), "goal": None})
        opts.asker = TerminalAsker(self)
        if self.open(opts):
            self.opts = opts
            self.welcome()

    def cmd_status(self, arg: str) -> None:
        run = self._need_run()
        if run is None:
            return
        tin, tout, cost = run.usage()
        table = Table(show_header=False, box=None, padding=(0, 2))
        rows = [
            ("session", f"{run.session.id}  ({run.session.dir})"),
            ("data", str(run.session.data_path)),
            ("backend", f"{run.backend_name} · model {getattr(run.backend, 'model', None)}"),
            ("persona", run.persona.name),
            ("budget", f"{fmt_seconds(run.budget_left())} left of {fmt_seconds(run.budget)} (the clock stops while waiting for you)"),
            ("tokens", f"{tin} in / {tout} out"),
            ("cost", f"${cost:.4f}" if cost is not None else ("n/a (offline)" if run.backend_name == "offline" else "unknown model price")),
            ("status", f"{run.chat_status()} · {run.state.steps} steps"),
            ("answers", ", ".join(f"{k}={v}" for k, v in run.state.answers.items()) or "none yet"),
        ]
        if run.state.assumptions:
            rows.append(("assumptions", str(len(run.state.assumptions))))
        for k, v in rows:
            table.add_row(Text(k, style="bold"), Text(v))
        self.print(table)

    def cmd_artifacts(self, arg: str) -> None:
        run = self._need_run()
        if run is None:
            return
        art = run.session.artifacts_dir
        files = sorted(p for p in art.rglob("*") if p.is_file() and paths.RECORDS_DIR not in p.relative_to(art).parts)
        if not files:
            self.say("No artifacts yet.")
            return
        self.print(Text.assemble(("artifacts in ", "bold"), str(art)))
        width = max(len(str(p.relative_to(art))) for p in files)
        for p in files:
            size = p.stat().st_size
            human = f"{size / 1024:.1f} kB" if size >= 1024 else f"{size} B"
            self.print(Text.assemble(f"  {str(p.relative_to(art)):<{width}}  {human:>9}  ", (str(p), "dim")), soft_wrap=True)
        records = list((art / paths.RECORDS_DIR).glob("*.json"))
        if records:
            self.say(f"+ {len(records)} tool records in {art / paths.RECORDS_DIR}")

    def show_names(self) -> list[str]:
        if self.run is None:
            return []
        art = self.run.session.artifacts_dir
        names = [n for n, rel in SHOW_NAMES.items() if (art / rel).exists()]
        plots = art / paths.PLOTS_DIR
        if plots.is_dir():
            names += [f"{paths.PLOTS_DIR}/{p.name}" for p in sorted(plots.iterdir()) if p.is_file()]
        return names

    def cmd_show(self, arg: str) -> None:
        run = self._need_run()
        if run is None:
            return
        art = run.session.artifacts_dir
        available = self.show_names()
        if not arg:
            self.say("show what? " + (", ".join(available) if available else "nothing to show yet"), style="")
            return
        path = None
        if arg in SHOW_NAMES:
            path = art / SHOW_NAMES[arg]
        else:
            for cand in (art / arg, art / paths.PLOTS_DIR / arg, *(art / paths.PLOTS_DIR).glob(f"{arg}.*")):
                if cand.is_file() and art.resolve() in cand.resolve().parents:
                    path = cand
                    break
        if path is None or not path.exists():
            close = difflib.get_close_matches(arg, available + list(SHOW_NAMES), n=3, cutoff=0.4)
            self.say(f"Nothing called {arg!r} yet." + (f" Did you mean {', '.join(close)}?" if close else "")
                     + (f" Available: {', '.join(available)}" if available else ""), style="yellow")
            return
        self._show_file(path)

    def _show_file(self, path: Path) -> None:
        name, suffix = path.name, path.suffix.lower()
        if name == Path(paths.LEADERBOARD).name:
            self.print(leaderboard_table(json.loads(path.read_text()), self.plain, top=20))
        elif name == Path(paths.PROFILE).name:
            prof = json.loads(path.read_text())
            self.print(profile_table(prof, self.plain))
            for note in profile_notes(prof):
                self.say(f"  {note}")
        elif suffix == ".md":
            self.print(markdown(path.read_text(encoding="utf-8", errors="replace"), self.plain))
        elif suffix == ".ipynb":
            self.print(notebook_view(path, self.plain))
        elif suffix == ".json":
            text = path.read_text(encoding="utf-8", errors="replace")
            lines = text.splitlines()
            self.print(code("\n".join(lines[:200]), "json", self.plain))
            if len(lines) > 200:
                self.say(f"… {len(lines) - 200} more lines in {path}")
        elif suffix in (".py", ".txt", ".csv", ".yaml", ".yml"):
            lexer = {".py": "python", ".yaml": "yaml", ".yml": "yaml"}.get(suffix, "text")
            self.print(code(path.read_text(encoding="utf-8", errors="replace")[:20000], lexer, self.plain))
        else:  # images and binaries: a terminal cannot show them; give a path to open
            self.print(Text.assemble((f"{name}: ", "bold"), str(path)))
        self.say(str(path))

    def cmd_profile(self, arg: str) -> None:
        run = self._need_run()
        if run is None:
            return
        prof = run.session.artifacts_dir / paths.PROFILE
        if not prof.exists():
            self._run_tool("profile_data", {"target": run.state.answers["target"]} if run.state.answers.get("target") else {})
        if prof.exists():
            self._show_file(prof)
            self.columns = _columns_of(run) or self.columns

    def _run_tool(self, name: str, args: dict[str, Any]) -> None:
        """Run one tool directly (outside the conversation), with the same worker and display."""
        from dsagent.sandbox import Progress

        run = self.run
        assert run is not None
        self.status.show(name, "starting")
        result = None
        try:
            for item in run.runner.run(name, args, run.state, timeout=300):
                if isinstance(item, Progress):
                    self.status.progress(item.message, item.fraction)
                else:
                    result = item
        except KeyboardInterrupt:
            run.runner.worker.stop()
            self.status.hide()
            self.say("Interrupted.", style="yellow")
            return
        finally:
            self.status.hide()
        if result is not None and not result.ok:
            self.error(f"{name}: {result.error}")

    def persona_names(self) -> list[str]:
        from dsagent.persona import list_personas

        return list_personas()

    def cmd_persona(self, arg: str) -> None:
        if not arg:
            current = self.run.persona.name if self.run else self.opts.persona
            self.say(f"persona: {current}; available: {', '.join(self.persona_names())} (or a path to a persona .md)", style="")
            return
        if self.run is None:
            self.opts.persona = arg
            self.say(f"persona set to {arg} for the next session.", style="")
            return
        try:
            self.run.switch(persona=arg)
        except BadInput as exc:
            self.error(str(exc))
            return
        self.say(f"persona now {self.run.persona.name} ({len(self.run.tools)} tools).", style="")

    def cmd_model(self, arg: str) -> None:
        run = self.run
        if not arg:
            current = getattr(run.backend, "model", None) if run else self.opts.model
            self.say(f"model: {current or 'default'}" + (" (the offline autopilot has no model to switch)"
                                                           if run and run.backend_name == "offline" else ""), style="")
            return
        if run is None:
            self.opts.model = arg
            self.say(f"model set to {arg} for the next session.", style="")
            return
        if run.backend_name == "offline":
            self.say("The offline autopilot has no model to switch; restart with --backend claude and ANTHROPIC_API_KEY.",
                     style="yellow")
            return
        try:
            run.switch(model=arg)
        except BadInput as exc:
            self.error(str(exc))
            return
        self.say(f"model now {getattr(run.backend, 'model', arg)}.", style="")

    def cmd_budget(self, arg: str) -> None:
        run = self._need_run()
        if run is None:
            return
        if arg:
            try:
                extra = float(arg.rstrip("s"))
            except ValueError:
                self.say("usage: /budget SECONDS (adds that many seconds of work)", style="yellow")
                return
            if extra <= 0:
                self.say("add a positive number of seconds", style="yellow")
                return
            run.state.deadline += extra
            run.budget += extra
            run.state.time_budget = run.budget
            run.session.update(time_budget=run.budget)
        self.say(f"budget: {fmt_seconds(run.budget_left())} left of {fmt_seconds(run.budget)}", style="")

    def cmd_save(self, arg: str) -> None:
        run = self._need_run()
        if run is None:
            return
        run._save_usage()
        run.session.update(status=run.chat_status(), answers=run.state.answers, assumptions=run.state.assumptions)
        out = run.session.dir / "chat.md"
        out.write_text(conversation_markdown(run.conversation), encoding="utf-8")
        self.say(f"Saved. Transcript {run.session.transcript_path}; conversation exported to {out}.", style="")
        self.say(f"Resume any time with: dsagent chat --resume {run.session.id}", style="")


class _PlainStatus:
    """The status line for plain mode: a line when a step starts, progress only when it changes."""

    def __init__(self, chat: Chat):
        self.chat = chat
        self.label = ""
        self.last = ""
        self.started = time.monotonic()

    def show(self, label: str, message: str = "") -> None:
        if label == "thinking":
            return
        self.label, self.last, self.started = label, "", time.monotonic()
        self.chat.console.print(f"  ... {label}")

    def progress(self, message: str, fraction: float | None) -> None:
        if message and message != self.last:
            self.last = message
            self.chat.console.print(f"      {self.label}: {message} [{time.monotonic() - self.started:.0f}s]")

    def hide(self) -> None:
        pass


def conversation_markdown(conversation: list[dict[str, Any]]) -> str:
    out = ["# dsagent chat\n"]
    for m in conversation:
        if m["role"] == "user":
            out.append(f"## You\n\n{m.get('text', '')}\n")
        elif m["role"] == "assistant":
            out.append(f"## dsagent\n\n{m.get('text', '')}\n")
            for c in m.get("tool_calls") or []:
                out.append(f"- tool `{c['name']}` {json.dumps(c.get('arguments', {}), default=str)}")
            out.append("")
        elif m["role"] == "tool":
            for r in m.get("results", []):
                status = "ok" if r.get("ok") else f"failed ({r.get('kind')})"
                out.append(f"- result of `{r.get('name')}`: {status}")
            out.append("")
    return "\n".join(out)


def run_chat(args) -> int:
    """Entry point of `dsagent chat` (called by dsagent.cli)."""
    answers = load_answers(args.answers) if getattr(args, "answers", None) else Answers()
    if hasattr(args, "task"):  # --task/--horizon are answers keys given as flags
        answers = cli_answers(args, answers)
    if getattr(args, "allow_unsandboxed", False):
        os.environ["DSAGENT_ALLOW_UNSANDBOXED"] = "1"
    plain = bool(getattr(args, "plain", False) or getattr(args, "json", False) or not sys.stdout.isatty())
    opts = RunOptions(data=args.data, target=args.target, goal=args.goal, answers=answers, time_budget=args.time_budget,
                      metric=args.metric, backend=args.backend, model=args.model, persona=args.persona,
                      sessions_dir=args.sessions_dir, on_questions="ask", max_trials=args.max_trials, seed=args.seed,
                      memory_mb=args.memory_mb, resume=args.resume, cluster=args.cluster,
                      tuning_storage=args.tuning_storage)
    chat = Chat(opts, plain=plain, debug=bool(getattr(args, "debug", False)))
    if args.data is not None or args.resume:
        what = f"resuming {args.resume}" if args.resume else f"opening {Path(args.data).name}"
        if plain:
            ok = chat.open(opts)
        else:
            with chat.console.status(f"{what} (loading the tools)…", spinner="dots"):
                ok = chat.open(opts)
        if not ok:
            return 2
    return chat.loop()
