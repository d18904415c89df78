"""The agent loop: backend turn -> validated tool calls -> results, with budgets and events.

Backend-agnostic. A backend's `stream_turn` is a generator that may yield text deltas and
returns a Turn. Every tool call is validated against its ToolSpec and executed by the sandbox
runner (ask_user by the Asker); unknown tools, bad arguments and tool failures come back to the
backend as error results, never as a crash of the loop. Everything is appended to the
session transcript as it happens, so a session can be resumed from it.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from pydantic import ValidationError

from dsagent.answers import join_notes, note_text
from dsagent.sandbox import CallResult, Limits, Progress, Worker
from dsagent.session import Session
from dsagent.tools.registry import ToolContext, ToolSpec, compact_json, format_validation_error


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]
    # Set by a backend when the call arrived unusable (e.g. arguments that are not a JSON
    # object): the call is answered with this as an error result, never executed or dropped.
    error: str | None = None


@dataclass
class Turn:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = "end_turn"
    usage: dict[str, Any] = field(default_factory=dict)
    raw: Any = None  # backend-specific content to replay verbatim (Claude's content blocks)


@dataclass
class Event:
    """What a UI renders. kind: text_delta | text | tool_start | tool_progress | tool_end |
    needs_input | notice | done."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    name: str
    model: str | None

    def stream_turn(self, conversation: list[dict[str, Any]], tools: list[ToolSpec], state: "LoopState") -> Iterator[str]:
        """Yield text deltas; return the Turn (generator return value)."""
        ...


class NeedsInput(Exception):
    """Raised by an Asker that cannot answer now (sub-agent mode): the run pauses."""

    def __init__(self, questions: list[dict[str, Any]]):
        super().__init__("needs input")
        self.questions = questions


class Asker(Protocol):
    def ask(self, questions: list[dict[str, Any]], state: "LoopState") -> dict[str, Any]:
        """Return {key: answer}. Answers recorded as assumptions go in state.assumptions."""
        ...


@dataclass
class LoopState:
    session: Session
    deadline: float  # epoch seconds
    time_budget: float
    answers: dict[str, Any] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    questions_asked: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    final_text: str = ""
    stopped: str | None = None  # why the loop ended early

    def seconds_left(self) -> float:
        return self.deadline - time.time()


class ToolRunner:
    """Executes validated tool calls through the session's sandboxed worker."""

    def __init__(self, session: Session, tools: dict[str, ToolSpec], limits: Limits | None = None, roots: list[str] | None = None,
                 cluster: str | None = None, tuning_storage: str | None = None):
        self.session = session
        self.cluster, self.tuning_storage = cluster, tuning_storage
        self.tools = tools
        self.roots = roots or []
        data = [session.data_path] if session.data_path else []
        self.worker = Worker(session.artifacts_dir, limits or Limits(), log_path=session.dir / "worker.log",
                             data_paths=data, roots=[Path(r) for r in self.roots])

    def context(self, state: LoopState) -> ToolContext:
        return ToolContext(
            session_dir=self.session.dir,
            artifacts_dir=self.session.artifacts_dir,
            data_path=self.session.data_path,
            seed=int(self.session.meta.get("seed", 0)),
            answers=state.answers,
            deadline=state.deadline,
            roots=self.roots,
            sandbox={"layers": self.worker.layers},
            cluster=self.cluster,
            tuning_storage=self.tuning_storage,
        )

    def run(self, name: str, args: dict[str, Any], state: LoopState, timeout: float) -> Iterator[Progress | CallResult]:
        ctx = self.context(state).to_json()
        yield from self.worker.call(name, args, ctx, timeout)

    def close(self) -> None:
        self.worker.stop()


def _save_record(session: Session, step: int, name: str, output: dict[str, Any]) -> str | None:
    record = output.get("record")
    if record is None:
        return None
    rel = f"records/{step:03d}-{name}.json"
    path = session.artifacts_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
    return rel


def tool_timeout(state: LoopState, grace: float) -> float:
    """A call may overrun the run's deadline by `grace` at most (deliverables need a slice)."""
    return max(15.0, state.seconds_left() + grace)


def run_loop(
    backend: Backend,
    state: LoopState,
    tools: dict[str, ToolSpec],
    runner: ToolRunner,
    asker: Asker,
    conversation: list[dict[str, Any]],
    *,
    max_steps: int = 40,
    grace: float | None = None,
) -> Iterator[Event]:
    """Drive the backend until it ends its turn without tool calls, or a limit is hit.

    Past the deadline the backend is expected to wrap up (it sees seconds_left() < 0); the loop
    itself only stops a run that overruns by `grace` (default: half the budget, at least 60 s),
    a safety net rather than the budget mechanism."""
    session = state.session
    if grace is None:
        grace = max(60.0, 0.5 * state.time_budget)
    specs = list(tools.values())
    while True:
        if state.steps >= max_steps:
            state.stopped = f"step limit of {max_steps} reached"
            yield Event("notice", {"message": state.stopped})
            return
        if state.seconds_left() < -grace:
            state.stopped = "time budget exhausted"
            yield Event("notice", {"message": state.stopped})
            return
        state.steps += 1
        stream = backend.stream_turn(conversation, specs, state)
        while True:
            try:
                delta = next(stream)
            except StopIteration as stop:
                turn: Turn = stop.value
                break
            yield Event("text_delta", {"text": delta})
        for key, value in (turn.usage or {}).items():
            if isinstance(value, (int, float)):
                state.usage[key] = state.usage.get(key, 0) + value
        message = {
            "role": "assistant",
            "text": turn.text,
            "tool_calls": [{k: v for k, v in c.__dict__.items() if v is not None} for c in turn.tool_calls],
            "stop_reason": turn.stop_reason,
        }
        if turn.raw is not None:
            message["raw"] = turn.raw
        conversation.append(message)
        session.append({"type": "assistant", **message, "usage": turn.usage})
        if turn.text:
            yield Event("text", {"text": turn.text})
        if not turn.tool_calls:
            state.final_text = turn.text
            return
        results = []
        for call in turn.tool_calls:
            result = yield from execute_call(call, tools, state, runner, asker, grace)
            results.append(result)
        tool_message = {"role": "tool", "results": results}
        conversation.append(tool_message)
        session.append({"type": "tool_results", "results": results})
        _crash_for_test(results)
        if any(r.get("kind") == "needs_input" for r in results):
            return


def _crash_for_test(results: list[dict[str, Any]]) -> None:
    """DSAGENT_TEST_KILL_AFTER=<tool>: SIGKILL this process right after that tool's result is
    persisted, the way a crash or `kill -9` would. The resume tests use it to crash exactly between
    two steps without racing a watcher against fast steps."""
    name = os.environ.get("DSAGENT_TEST_KILL_AFTER")
    if name and any(r.get("name") == name and r.get("ok") for r in results):
        os.kill(os.getpid(), signal.SIGKILL)


def execute_call(call: ToolCall, tools: dict[str, ToolSpec], state: LoopState, runner: ToolRunner, asker: Asker, grace: float):
    base = {"id": call.id, "name": call.name}
    spec = tools.get(call.name)
    if spec is None:
        known = ", ".join(sorted(tools))
        yield Event("tool_end", {**base, "ok": False, "error": "unknown tool"})
        return {**base, "ok": False, "kind": "unknown_tool", "content": f"unknown tool {call.name!r}; available tools: {known}"}
    if call.error:
        yield Event("tool_end", {**base, "ok": False, "error": call.error})
        return {**base, "ok": False, "kind": "invalid_arguments", "content": call.error}
    # A tool known from the catalogue (tools/tool_catalogue.py: this process did not import it) is
    # validated by the worker against its real ToolSpec; the same message comes back (below).
    try:
        params = None if getattr(spec, "validated_by_worker", False) else spec.validate(call.arguments)
    except ValidationError as exc:
        msg = format_validation_error(exc)
        yield Event("tool_end", {**base, "ok": False, "error": msg})
        return {**base, "ok": False, "kind": "invalid_arguments", "content": msg}
    yield Event("tool_start", {**base, "arguments": call.arguments})
    if spec.runs_in_loop:
        questions = [q for q in params.model_dump()["questions"]]
        state.questions_asked.extend(questions)
        try:
            answers = asker.ask(questions, state)
        except NeedsInput as pause:
            yield Event("needs_input", {"questions": pause.questions})
            return {**base, "ok": False, "kind": "needs_input", "content": "waiting for the user's answers",
                    "questions": pause.questions}
        answers = {k: v for k, v in answers.items() if v is not None}
        if "note" in answers:  # notes add up; every other key is settled by its latest answer
            answers["note"] = join_notes(state.answers.get("note"), note_text(answers["note"]))
        state.answers.update(answers)
        state.session.update(answers=state.answers, assumptions=state.assumptions)
        content = compact_json({"answers": answers, "assumptions": state.assumptions})
        yield Event("tool_end", {**base, "ok": True, "seconds": 0.0, "summary": answers})
        return {**base, "ok": True, "content": content}
    started = time.monotonic()
    result: CallResult | None = None
    try:
        for item in runner.run(call.name, call.arguments, state, tool_timeout(state, grace)):
            if isinstance(item, Progress):
                yield Event("tool_progress", {**base, "message": item.message, "fraction": item.fraction,
                                              "elapsed": time.monotonic() - started})
            else:
                result = item
    except KeyboardInterrupt:
        state.session.append({"type": "tool_results", "results": [{**base, "ok": False, "kind": "interrupted",
                                                                   "content": "interrupted by the user"}]})
        raise
    assert result is not None
    if result.ok and result.output is not None:
        record_path = _save_record(state.session, state.steps, call.name, result.output)
        summary = result.output.get("summary")
        yield Event("tool_end", {**base, "ok": True, "seconds": result.seconds, "summary": summary,
                                 "files": result.output.get("files", {})})
        return {**base, "ok": True, "content": compact_json(summary), "files": result.output.get("files", {}),
                "record": record_path, "seconds": round(result.seconds, 2)}
    yield Event("tool_end", {**base, "ok": False, "seconds": result.seconds, "error": result.error})
    if result.kind == "invalid_arguments":  # the worker's validation: what this process's would have said
        return {**base, "ok": False, "kind": "invalid_arguments", "content": result.error}
    return {**base, "ok": False, "kind": result.kind, "content": f"error: {result.error}", "seconds": round(result.seconds, 2)}
