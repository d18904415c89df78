"""The run's time budget on every surface: explicit argument > answers > the one default.

Each test goes through the real surface (the CLI and chat in a subprocess, the MCP server through
`mcp.client.Client` in memory, the Python API) and reads the budget the session recorded in
session.json; none of them waits for a whole run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp.client import Client

from dsagent.answers import DEFAULT_TIME_BUDGET

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"
FROM_ANSWERS, EXPLICIT = 77.0, 33.0


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}


def _recorded(sessions: Path) -> list[float]:
    return sorted(json.loads(p.read_text())["time_budget"] for p in sessions.glob("*/session.json"))


def _answers_file(tmp_path: Path) -> Path:
    f = tmp_path / "answers.yaml"
    f.write_text(f"time_budget: {FROM_ANSWERS:g}\n")
    return f


def test_cli_run_explicit_beats_answers_beats_default(tmp_path):
    answers = _answers_file(tmp_path)
    cases = {"answers": [], "explicit": ["--time-budget", str(EXPLICIT)]}
    procs = {}
    for name, extra in cases.items():
        cmd = [sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "species", "--backend", "offline",
               "--answers", str(answers), "--sessions-dir", str(tmp_path / name), *extra]
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=_env())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(list((tmp_path / n).glob("*/transcript.jsonl")) for n in cases):
            time.sleep(0.2)  # the transcript's first line comes after session.json holds the budget
    finally:
        for proc in procs.values():
            proc.terminate()  # SIGTERM: the CLI stops its worker and keeps the session
            proc.wait(timeout=30)
    assert _recorded(tmp_path / "answers") == [FROM_ANSWERS]
    assert _recorded(tmp_path / "explicit") == [EXPLICIT]


def test_chat_takes_the_budget_from_the_answers(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "chat", str(EXAMPLE), "--plain", "--backend", "offline",
                           "--answers", str(_answers_file(tmp_path)), "--sessions-dir", str(tmp_path / "s")],
                          input="", capture_output=True, text=True, timeout=60, cwd=ROOT, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert _recorded(tmp_path / "s") == [FROM_ANSWERS]


def test_python_api_answers_budget_is_not_overridden_by_a_default(tmp_path):
    from dsagent import Assistant, run_task

    # No target: the run profiles, then pauses on its questions (cheap) with the session saved.
    result = run_task(None, EXAMPLE, answers={"time_budget": FROM_ANSWERS}, backend="offline",
                      sessions_dir=tmp_path / "answers")
    assert result.status == "needs_input"
    assert _recorded(tmp_path / "answers") == [FROM_ANSWERS]

    def first_event(assistant: Assistant, **kw) -> None:
        events = assistant.events(None, EXAMPLE, answers=kw.pop("answers", None), **kw)
        next(events)
        events.close()  # stops the run and its worker; session.json already holds the budget

    first_event(Assistant(backend="offline", sessions_dir=tmp_path / "explicit", time_budget=EXPLICIT),
                answers={"time_budget": FROM_ANSWERS})
    assert _recorded(tmp_path / "explicit") == [EXPLICIT]
    first_event(Assistant(backend="offline", sessions_dir=tmp_path / "default"))
    assert _recorded(tmp_path / "default") == [DEFAULT_TIME_BUDGET]


def test_mcp_start_ml_task_and_load_data_take_the_budget_from_the_answers(tmp_path):
    from dsagent.mcp_server import build_server

    data = tmp_path / "data"
    data.mkdir()
    (data / "penguins.csv").write_bytes(EXAMPLE.read_bytes())
    sessions = tmp_path / "sessions"
    server = build_server([data], sessions)

    async def go():
        async with Client(server) as client:
            budgets = {}
            for name, extra in (("answers", {}), ("explicit", {"time_budget": EXPLICIT})):
                r = await client.call_tool("start_ml_task", {
                    "data": "penguins.csv", "goal": "field guide", "target": "species", "backend": "offline",
                    "answers": {"time_budget": FROM_ANSWERS}, **extra})
                assert not r.is_error, r.content[0].text
                task_id = json.loads(r.content[0].text)["task_id"]
                budgets[name] = json.loads((sessions / task_id / "session.json").read_text())["time_budget"]
                await client.call_tool("cancel_task", {"task_id": task_id})
            r = await client.call_tool("load_data", {"path": "penguins.csv", "answers": {"time_budget": FROM_ANSWERS}})
            assert not r.is_error, r.content[0].text
            budgets["direct"] = json.loads(r.content[0].text)["time_budget_s"]
            return budgets

    try:
        budgets = anyio.run(go)
    finally:
        server.app.close()
    assert budgets == {"answers": FROM_ANSWERS, "explicit": EXPLICIT, "direct": FROM_ANSWERS}


def test_the_cli_budget_counts_from_process_start_not_from_its_import():
    """`dsagent run`'s budget starts when the OS created the process: Python's start-up and any
    wait before dsagent.cli is imported (10-50 s on a loaded machine) are not free time."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("no /proc: the budget counts from dsagent.cli's import there")
    code = ("import time; t = time.time(); time.sleep(1.0)\n"
            "from dsagent import cli; print(t - cli.LAUNCHED)")
    before = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    ahead = float(out.stdout.strip())  # how long before the child's first line the budget began
    assert 0.0 <= ahead < time.time() - before, ahead  # at or before the first line, never before the spawn
