"""`dsagent chat`: the /commands. `/xxx` is the method `cmd_xxx` of this mixin (Aider's habit);
`Chat` (agent/chat.py) inherits them, so they use its console, run and reader."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from dsagent.answers import Answers, BadInput
from dsagent.chat_asker import TerminalAsker
from dsagent.chat_render import code, fmt_seconds, leaderboard_table, markdown, notebook_view, profile_notes, profile_table
from dsagent.chat_run import columns_of
from dsagent.runtime import RunOptions
from dsagent.tools import paths

if TYPE_CHECKING:
    from dsagent.chat_run import ChatRun

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


class ChatCommands:
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
            self.columns = columns_of(run) or self.columns

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
