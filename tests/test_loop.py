"""The loop with a fake backend: error results instead of crashes, step limit, transcript."""

from __future__ import annotations

import json
import time

from dsagent.loop import LoopState, ToolCall, Turn, run_loop
from dsagent.asking import AssumeAsker
from dsagent.sandbox import CallResult
from dsagent.session import Session, read_transcript
from dsagent.tools.registry import all_tools


class ScriptedBackend:
    """Plays back a list of turns; records what it was shown (like simonw/llm's MockModel)."""

    name = "fake"
    model = "fake"

    def __init__(self, turns):
        self.turns = list(turns)
        self.seen = []

    def stream_turn(self, conversation, tools, state):
        self.seen.append([dict(m) for m in conversation])
        turn = self.turns.pop(0) if self.turns else Turn(text="done")
        if turn.text:
            yield turn.text
        return turn


class StubRunner:
    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.calls = []

    def run(self, name, args, state, timeout):
        self.calls.append((name, args))
        yield self.behaviour(name, args)

    def close(self):
        pass


def _state(tmp_path):
    session = Session.create(tmp_path, data_path=None, persona="t", backend="fake")
    return LoopState(session=session, deadline=time.time() + 60, time_budget=60)


def test_errors_become_results_not_crashes(tmp_path):
    turns = [
        Turn(tool_calls=[ToolCall("1", "no_such_tool", {})]),
        Turn(tool_calls=[ToolCall("2", "train_models", {"models": "not-a-list"})]),
        Turn(tool_calls=[ToolCall("3", "train_models", {})]),
        Turn(text="finished"),
    ]
    backend = ScriptedBackend(turns)
    runner = StubRunner(lambda n, a: CallResult(False, error="ValueError: boom", kind="exception"))
    state = _state(tmp_path)
    events = list(run_loop(backend, state, all_tools(), runner, AssumeAsker(), [{"role": "user", "text": "go"}]))
    results = [m for m in backend.seen[-1] if m["role"] == "tool"]
    kinds = [r["results"][0]["kind"] for r in results]
    assert kinds == ["unknown_tool", "invalid_arguments", "exception"]
    assert "available tools" in results[0]["results"][0]["content"]
    assert runner.calls == [("train_models", {})]  # invalid arguments never reach the worker
    assert state.final_text == "finished"
    assert any(e.kind == "tool_end" and not e.data["ok"] for e in events)
    logged = [e["type"] for e in read_transcript(state.session.transcript_path)]
    assert logged.count("tool_results") == 3 and logged[-1] == "assistant"


def test_step_limit(tmp_path):
    loop_forever = [Turn(tool_calls=[ToolCall(str(i), "no_such_tool", {})]) for i in range(50)]
    state = _state(tmp_path)
    events = list(run_loop(ScriptedBackend(loop_forever), state, all_tools(), StubRunner(None), AssumeAsker(),
                           [{"role": "user", "text": "go"}], max_steps=4))
    assert state.steps == 4
    assert state.stopped and "step limit" in state.stopped
    assert events[-1].kind == "notice"


def test_ask_user_answered_by_asker_with_assumptions(tmp_path):
    q = {"questions": [{"key": "cost_fp", "question": "cost of a false alarm?", "default": 1.0},
                       {"key": "goal", "question": "goal?", "default": "x"}]}
    state = _state(tmp_path)
    backend = ScriptedBackend([Turn(tool_calls=[ToolCall("1", "ask_user", q)]), Turn(text="ok")])
    list(run_loop(backend, state, all_tools(), StubRunner(None), AssumeAsker({"goal": "reduce churn"}),
                  [{"role": "user", "text": "go"}]))
    assert state.answers == {"cost_fp": 1.0, "goal": "reduce churn"}
    assert len(state.assumptions) == 1 and state.assumptions[0].startswith("cost_fp")
    result = backend.seen[-1][-1]["results"][0]
    assert result["ok"] and json.loads(result["content"])["answers"]["goal"] == "reduce churn"
