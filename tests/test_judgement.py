""""Use your judgement" through the Python API and the real MCP client: a question left to judgement
is answered and the choice is stated with its reasoning (the target too, when the goal or the data
make one column the clear choice); when no choice is defensible, one line says why and lists the
options. Each run stops as soon as the questions are settled (no model is trained here)."""

from __future__ import annotations

import json
import random

import anyio
import pytest
from mcp.client import Client

from dsagent.api import Assistant, run_task
from dsagent.mcp_server import build_server


def _write(path, header: str):
    rng = random.Random(0)
    path.write_text(header + "\n" + "".join(f"{rng.random():.3f},{rng.randint(0, 3)},{rng.randint(0, 1)}\n"
                                            for _ in range(60)))
    return path


@pytest.fixture()
def files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    return {"clear": _write(data / "clear.csv", "f1,f2,label"), "unclear": _write(data / "unclear.csv", "f1,f2,f3"),
            "data": data, "sessions": tmp_path / "sessions"}


def _until_questions_settled(assistant, goal, data, **kw) -> dict:
    """Stream a real run and stop right after ask_user is answered: session.json as it then was."""
    events = assistant.events(goal, data, **kw)
    try:
        for event in events:
            assert event.kind not in ("needs_input", "done"), event
            if event.kind == "tool_end" and event.data.get("name") == "ask_user":
                break
    finally:
        events.close()
    (meta,) = assistant.sessions_dir.glob("*/session.json")
    return json.loads(meta.read_text())


@pytest.mark.parametrize("mode", ["assume", "goal"])
def test_api_judgement_picks_the_clear_target_and_says_why(files, mode):
    """on_questions="assume", or "ask" with a goal that leaves the questions to judgement."""
    assistant = Assistant(backend="offline", sessions_dir=files["sessions"] / mode, time_budget=30, max_trials=1,
                          on_questions="assume" if mode == "assume" else "ask")
    goal = "build a model" + ("; use your judgement on anything you need to ask" if mode == "goal" else "")
    meta = _until_questions_settled(assistant, goal, files["clear"])
    assert meta["answers"]["target"] == "label"
    (target,) = [a for a in meta["assumptions"] if a.startswith("target = ")]
    assert "label is named like a target and your goal names no other column" in target
    assert any(a.startswith("interpretability = 'medium'") and "(the stated default: decides" in a
               for a in meta["assumptions"])


def test_api_judgement_with_no_clear_target_says_why_in_one_line(files):
    result = run_task("build a model", files["unclear"], backend="offline", on_questions="assume", time_budget=30,
                      max_trials=1, sessions_dir=files["sessions"] / "a")
    assert result.status == "failed" and result.target is None
    assert result.error == ("no column is the clear target: your goal names no column and none is named like a target; "
                            "options: f1, f2, f3; pass target=COL (--target COL)")
    assert not any(a.startswith("target = ") for a in result.assumptions)  # no "target = None" pretending

    result = run_task("build a model. use your judgement", files["unclear"], backend="offline", on_questions="ask",
                      time_budget=30, max_trials=1, sessions_dir=files["sessions"] / "b")
    assert result.status == "needs_input" and [q.key for q in result.questions] == ["target"]
    assert result.questions[0].why.startswith("no column is the clear target: your goal names no column")
    assert result.questions[0].options == ["f1", "f2", "f3"]


def _payload(result) -> dict:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


def test_mcp_use_your_judgement_answers_the_target_or_says_why_not(files):
    server = build_server([files["data"]], files["sessions"])

    async def go():
        async with Client(server) as client:
            ids = {}
            for name in ("clear", "unclear"):
                started = _payload(await client.call_tool("start_ml_task", {
                    "data": f"{name}.csv", "goal": "build a model", "backend": "offline", "time_budget": 30,
                    "max_trials": 1}))
                ids[name] = started["task_id"]
            judged = {}
            for name, task_id in ids.items():
                status = _payload(await client.call_tool("task_status", {"task_id": task_id, "wait_s": 120}))
                assert status["status"] == "needs_input", status
                assert "target" in [q["key"] for q in status["questions"]]
                answers = {q["key"]: "use your judgement" for q in status["questions"]}
                judged[name] = await client.call_tool("answer_questions", {"task_id": task_id, "answers": answers})
            assert judged["unclear"].is_error
            assert judged["unclear"].content[0].text.endswith(
                "answers: target: no column is the clear target: your goal names no column and none is named like a "
                "target; options: f1, f2, f3; give one")
            assert _payload(judged["clear"])["status"] == "running"
            _payload(await client.call_tool("cancel_task", {"task_id": ids["clear"]}))
            return _payload(await client.call_tool("task_result", {"task_id": ids["clear"]}))

    try:
        result = anyio.run(go)
    finally:
        server.app.close()
    (target,) = [a for a in result["assumptions"] if a.startswith("target = ")]
    assert target == ("target = 'label': left to dsagent's judgement (label is named like a target and your goal "
                      "names no other column)")


def test_cli_run_with_the_target_left_to_judgement(files):
    """`dsagent run` (which assumes): a goal or an answers file leaving the target to judgement lets the
    run take the clear column; with no clear column, exit 2 and one line naming the options."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    cmd = [sys.executable, "-m", "dsagent.cli", "run", str(files["unclear"]), "--backend", "offline", "--sessions-dir",
           str(files["sessions"]), "--json", "--goal", "build a model; use your judgement"]
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == ("error: no column is the clear target: your goal names no column and "
                                                   "none is named like a target; options: f1, f2, f3; pass --target COL")
    # The clear column passes the gate; the run's asker then picks it with its reason (the API tests above).
    from dsagent.cli import _goal_target

    assert _goal_target(None, files["clear"], judged=True) == "label"
    assert _goal_target("build a model; use your judgement", files["clear"]) == "label"
    assert _goal_target("build a model", files["clear"]) is None  # not left to judgement: asked for, as before


def test_a_column_named_default_or_skip_is_a_column_not_a_judgement_phrase():
    """ISLR's Default data keeps its target in a column called "default": `--target default` used to
    be read as "you decide" and the run stopped without a target. For the keys that name a column,
    only the longer phrases leave the choice to judgement; elsewhere "default" still does."""
    from dsagent.answers import Answers, parse_answers

    assert Answers().merged({"target": "default"}).target == "default"
    assert parse_answers({"time_column": "skip", "group_column": "default"}).given() == {
        "time_column": "skip", "group_column": "default"}
    judged = parse_answers({"target": "use your judgement", "metric": "default"})
    assert judged.target is None and judged.metric is None and judged._judgement == {"target", "metric"}
