"""`dsagent chat`: the run behind a chat. A `ChatRun` is a Run that takes several user turns and
stops its clock while the person is thinking (split out of agent/chat.py; no terminal here)."""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

from dsagent import runtime
from dsagent.goal import data_columns
from dsagent.loop import Event
from dsagent.runtime import Run, RunOptions
from dsagent.session import read_transcript
from dsagent.tools import paths

STEPS_PER_TURN = 40
COLUMNS_READ_LIMIT = 200 * 2**20  # bytes: larger files are not read in the chat process just for completion


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
        from dsagent.tools.registry import agent_tools

        if persona:
            registry = agent_tools()
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


def columns_of(run: Run | None) -> list[str] | None:
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
