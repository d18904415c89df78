"""`dsagent chat`: the interactive terminal surface.

One class (`Chat`) owns the prompt and the rich Console; `/xxx` commands are `cmd_xxx` methods
(Aider's habit) of its mixin in agent/chat_commands.py. The run is agent/chat_run.py, the line
readers and completion agent/chat_input.py (the only module that imports prompt_toolkit), the
clarifying questions agent/chat_asker.py.

How a chat maps onto a Run: a `ChatRun` is a Run that takes several user turns. Each message is
appended to the conversation and the transcript, then the loop runs until the backend ends its
turn. The time budget is a budget of work: the clock stops while the chat waits for the person
(at the prompt or on a clarifying question), so reading and typing never starve the training.

Ctrl-C during a turn stops the worker and drops the unfinished step (the transcript records it as
interrupted); the session stays usable and Enter continues. A second Ctrl-C, or Ctrl-D, at the
prompt exits and prints how to resume.
"""


from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.text import Text

from dsagent import runtime
from dsagent.answers import ANSWER_KEYS, Answers, BadInput, cli_answers, load_answers, parse_answers
from dsagent.chat_asker import TerminalAsker
from dsagent.chat_commands import ChatCommands, Quit
from dsagent.chat_input import PromptReader, StdinReader, make_completer, styled_prompt
from dsagent.chat_render import (MarkdownStream, StatusLine, fmt_seconds, fmt_tokens, leaderboard_table, markdown,
                               one_line, profile_notes, profile_table, summary_table)
from dsagent.chat_run import ChatRun, columns_of
from dsagent.loop import Event
from dsagent.runtime import RunOptions
from dsagent.tools import paths


class Chat(ChatCommands):
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
                reader = PromptReader(hist, make_completer(self), self.toolbar, plain, input=input, output=output)
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
        return styled_prompt()

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
        cols = columns_of(run)
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
