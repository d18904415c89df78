"""The MCP server, through the real `mcp` client: in memory, and `dsagent mcp` as a subprocess over stdio.

One full offline run (over stdio, polled to completion); in memory, a task is paused on a
question, answered (it resumes past the question) and then cancelled mid-run.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from dsagent.mcp_server import ARTIFACTS, build_server
from dsagent.tasks import MCP_SESSION_TOOLS
from dsagent.tools.registry import all_tools

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"
DSAGENT = Path(sys.executable).parent / "dsagent"


def registry_schemas() -> dict[str, dict]:
    return {name: spec.to_anthropic()["input_schema"] for name, spec in all_tools().items() if name != "ask_user"}


def payload(result) -> dict:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    base = tmp_path_factory.mktemp("mcp")
    data = base / "data"
    data.mkdir()
    shutil.copy(EXAMPLE, data / "penguins.csv")
    secret = base / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text("a,b\n1,2\n", encoding="utf-8")
    os.symlink(secret, data / "link.csv")  # inside the root by name, outside by target
    return {"base": base, "data": data, "sessions": base / "sessions", "secret": secret}


@pytest.fixture(scope="module")
def server(place):
    srv = build_server([place["data"]], place["sessions"])
    yield srv
    srv.app.close()


def run(fn):
    return anyio.run(fn)


def _check_tool_list(tools) -> None:
    listed = {t.name: t for t in tools.tools}
    expected = registry_schemas()
    assert "ask_user" not in listed
    assert set(expected) | set(MCP_SESSION_TOOLS) == set(listed)
    for name, schema in expected.items():
        assert listed[name].input_schema == schema, name
        assert listed[name].description == all_tools()[name].description


def test_tools_are_the_registry_minus_ask_user(server):
    async def go():
        async with Client(server) as client:
            _check_tool_list(await client.list_tools())

    run(go)


def test_direct_calls_need_data_under_the_root(server, place):
    async def go():
        async with Client(server) as client:
            refused = await client.call_tool("profile_data", {})
            assert refused.is_error and "load_data" in refused.content[0].text
            for bad in (str(place["secret"]), "../outside/secret.csv", "link.csv", "/etc/passwd"):
                r = await client.call_tool("load_data", {"path": bad})
                assert r.is_error, bad
                assert "outside the allowed data roots" in r.content[0].text, r.content[0].text
            r = await client.call_tool("load_data", {"path": "missing.csv"})
            # ... and says where a relative path was looked for (the server's first root, not its cwd)
            assert r.is_error and "not found" in r.content[0].text and str(place["data"].resolve()) in r.content[0].text, r.content[0].text
            info = payload(await client.call_tool("load_data", {"path": "penguins.csv", "target": "species"}))
            session_dir = Path(info["session_dir"])
            assert session_dir.parent == place["sessions"].resolve()
            progress: list[tuple] = []

            async def on_progress(value, total, message):
                progress.append((value, total, message))

            out = payload(await client.call_tool("profile_data", {}, progress_callback=on_progress))
            assert out["session_id"] == info["session_id"]
            assert out["summary"]["shape"][0] == 344
            assert progress, "no progress notification while profile_data ran"
            assert all(Path(p).is_file() and session_dir in Path(p).parents for p in out["files"].values())
            bad_args = await client.call_tool("define_task", {"target": "species", "test_size": "lots"})
            assert bad_args.is_error and "invalid arguments" in bad_args.content[0].text
            # The call is in the session's transcript, and its record on disk.
            events = [json.loads(line) for line in (session_dir / "transcript.jsonl").read_text().splitlines()]
            assert any(e["type"] == "direct_call" and e["name"] == "profile_data" for e in events)
            text = (await client.read_resource(f"dsagent://sessions/{info['session_id']}/profile")).contents[0].text
            assert json.loads(text)
            with pytest.raises(MCPError):
                await client.read_resource(f"dsagent://sessions/{info['session_id']}/report")  # not written yet
            with pytest.raises(MCPError):
                await client.read_resource("dsagent://sessions/..%2F..%2Fetc/report")
            r = await client.call_tool("start_ml_task", {"data": str(place["secret"]), "goal": "x"})
            assert r.is_error and "outside the allowed data roots" in r.content[0].text
            r = await client.call_tool("task_status", {"task_id": "../../etc"})
            assert r.is_error

    run(go)


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_task_pauses_on_a_question_resumes_with_the_answer_and_cancels(server, place):
    async def go():
        async with Client(server) as client:
            started = payload(await client.call_tool("start_ml_task", {
                "data": "penguins.csv", "goal": "identify species for a field guide", "target": "species",
                "backend": "offline", "time_budget": 60, "max_trials": 2}))
            task_id = started["task_id"]
            status = payload(await client.call_tool("task_status", {"task_id": task_id, "wait_s": 120}))
            assert status["status"] == "needs_input", status
            keys = [q["key"] for q in status["questions"]]
            assert keys and "target" not in keys and "goal" not in keys  # given up front: never asked again
            paused = payload(await client.call_tool("task_result", {"task_id": task_id}))
            assert paused["status"] == "needs_input" and paused["questions"]
            bad = await client.call_tool("answer_questions", {"task_id": task_id, "answers": {"colour": "red"}})
            assert bad.is_error and "unknown key" in bad.content[0].text
            answers = {k: "use your judgement" for k in keys}
            resumed = payload(await client.call_tool("answer_questions", {"task_id": task_id, "answers": answers}))
            assert resumed["status"] == "running"
            return task_id

    task_id = run(go)
    task = server.app.tasks.get(task_id)
    # It resumes past the question: the next steps run in the same session.
    _wait_for(lambda: any(s["name"] in ("define_task", "train_models") for s in task.steps), 120, "the resumed run")
    worker = task.run.runner.worker if task.run else None

    async def cancel():
        async with Client(server) as client:
            snap = payload(await client.call_tool("cancel_task", {"task_id": task_id}))
            assert snap["status"] == "cancelled", snap
            result = payload(await client.call_tool("task_result", {"task_id": task_id}))
            assert result["status"] == "failed" and "cancelled" in result["error"]
            assert any("judgement" in a for a in result["assumptions"])
            listed = payload(await client.call_tool("list_tasks", {}))
            assert any(t["id"] == task_id and t["status"] == "cancelled" for t in listed)

    started = time.monotonic()
    run(cancel)
    assert time.monotonic() - started < 30
    assert worker is None or worker.proc is None or worker.proc.poll() is not None
    meta = json.loads((place["sessions"] / task_id / "session.json").read_text())
    assert meta["status"] == "cancelled"


@pytest.mark.slow
def test_stdio_subprocess_full_task(place, tmp_path):
    """`dsagent mcp` over stdio: tools, a direct call with progress, a whole offline task polled to completion."""
    assert DSAGENT.exists(), "the dsagent console script is not installed in this venv"
    sessions = tmp_path / "stdio-sessions"
    params = StdioServerParameters(command=str(DSAGENT),
                                   args=["mcp", "--root", str(place["data"]), "--sessions-dir", str(sessions)],
                                   cwd=str(tmp_path))

    async def go():
        async with Client(params) as client:
            _check_tool_list(await client.list_tools())
            await client.call_tool("load_data", {"path": "penguins.csv"})
            progress: list = []

            async def on_progress(value, total, message):
                progress.append(message)

            prof = payload(await client.call_tool("profile_data", {"target": "species"}, progress_callback=on_progress))
            assert prof["summary"]["shape"] == [344, 8] and progress
            refused = await client.call_tool("load_data", {"path": "/etc/passwd"})
            assert refused.is_error
            started = payload(await client.call_tool("start_ml_task", {
                "data": "penguins.csv", "goal": "identify species", "target": "species", "backend": "offline",
                "on_questions": "assume", "time_budget": 20, "max_trials": 2}))
            task_id = started["task_id"]
            deadline = time.monotonic() + 280
            status = {}
            while time.monotonic() < deadline:
                status = payload(await client.call_tool("task_status", {"task_id": task_id, "wait_s": 20}))
                if status["status"] != "running":
                    break
                assert 0 <= status["progress"] <= 1 and status["elapsed_s"] >= 0
            assert status["status"] == "completed", status
            result = payload(await client.call_tool("task_result", {"task_id": task_id}))
            assert result["status"] == "completed" and result["test_score"] is not None
            assert result["assumptions"], "assume mode records what it assumed"
            for key in ("model", "report", "model_card", "monitoring"):
                assert result["artifacts"][key] and Path(result["artifacts"][key]).is_file(), key
            report = (await client.read_resource(f"dsagent://sessions/{task_id}/report")).contents[0]
            assert report.mime_type == "text/markdown" and "species" in report.text
            as_json = json.loads((await client.read_resource(f"dsagent://sessions/{task_id}/result")).contents[0].text)
            assert as_json["session_id"] == task_id
            uris = {str(r.uri) for r in (await client.list_resources()).resources}
            assert f"dsagent://sessions/{task_id}/leaderboard" in uris
            return task_id

    task_id = run(go)
    assert (sessions / task_id / "session.json").is_file()
    assert set(ARTIFACTS) >= {"report", "model-card", "notebook", "monitoring", "leaderboard"}


def test_http_transport_on_loopback(place, tmp_path):
    """`dsagent mcp --http PORT` serves streamable HTTP on 127.0.0.1 (a legacy and a modern client)."""
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(DSAGENT), "mcp", "--http", str(port), "--root", str(place["data"]),
                             "--sessions-dir", str(tmp_path / "http-sessions")],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        _wait_for(lambda: listening() or proc.poll() is not None, 60, "the HTTP server")
        assert proc.poll() is None, proc.stderr.read().decode()

        async def go():
            for mode in ("legacy", "auto"):
                async with Client(f"http://127.0.0.1:{port}/mcp", mode=mode) as client:
                    names = {t.name for t in (await client.list_tools()).tools}
                    assert set(registry_schemas()) <= names
                    info = payload(await client.call_tool("load_data", {"path": "penguins.csv"}))
                    assert Path(info["session_dir"]).parent == (tmp_path / "http-sessions").resolve()

        run(go)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_claude_task_asks_only_answerable_keys_and_the_answer_is_accepted(server, place, monkeypatch):
    """Through Claude (the real SDK against the local fake API): a question on an unknown key is
    refused with the list of keys, so the task pauses on keys answer_questions accepts. A pending
    question on an unknown key that slipped through anyway (an older session) is answered too:
    that answer is kept as a note, not refused."""
    from fake_anthropic import FakeAnthropic, message

    def ask(i: int, questions: list[dict]):
        return message([{"type": "tool_use", "id": f"toolu_{i}", "name": "ask_user", "input": {"questions": questions}}],
                       "tool_use")

    fake = FakeAnthropic().start()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    fake.push(ask(1, [{"key": "churn_window", "question": "How many idle days mean churn?", "default": "90"}]),
              ask(2, [{"key": "note", "question": "Anything else I should know?"},
                      {"key": "cost_fn", "question": "What does a missed case cost?", "default": 1}]),
              message([{"type": "text", "text": "Noted; stopping here."}]))

    async def go():
        async with Client(server) as client:
            started = payload(await client.call_tool("start_ml_task", {
                "data": "penguins.csv", "goal": "predict sex", "target": "sex", "backend": "claude", "time_budget": 30}))
            task_id = started["task_id"]
            status = payload(await client.call_tool("task_status", {"task_id": task_id, "wait_s": 60}))
            assert status["status"] == "needs_input" and [q["key"] for q in status["questions"]] == ["note", "cost_fn"]
            server.app.tasks.get(task_id).questions.append({"key": "legacy_key", "question": "From an older session?"})
            answers = {"note": "calls go out on Mondays", "cost_fn": 50, "legacy_key": "weekly"}
            resumed = await client.call_tool("answer_questions", {"task_id": task_id, "answers": answers})
            assert payload(resumed)["status"] == "running"
            final = payload(await client.call_tool("task_status", {"task_id": task_id, "wait_s": 60}))
            assert final["status"] != "running"
            return task_id

    try:
        task_id = run(go)
    finally:
        fake.stop()
    refused = fake.requests[1]["body"]["messages"][-1]["content"][0]
    assert refused["is_error"] and "'note'" in refused["content"]
    assert len(fake.requests) == 3  # the resumed run went on talking to Claude
    answers = json.loads((place["sessions"] / task_id / "session.json").read_text())["answers"]
    assert answers["cost_fn"] == 50 and answers["note"].splitlines() == ["calls go out on Mondays", "legacy_key: weekly"]
