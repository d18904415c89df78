"""An answer that names a column the data does not have is bad input before any work starts:
one line naming it and its closest matches, exit 2 from the CLI, BadInput from the Python API,
an error result from MCP. Nothing is saved for a run that never started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp.client import Client

from dsagent.answers import BadInput

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


@pytest.mark.parametrize("answers, extra, needle", [
    ("sensitive_columns: [sex, islnd]\n", ["--target", "species"], "sensitive_columns: 'islnd' is not a column of penguins.csv; did you mean 'island'?"),
    ("time_column: yaer\nsegment_columns: [island]\n", ["--target", "species"], "time_column: 'yaer' is not a column"),
])
def test_cli_misspelled_column_is_one_line_exit_2(tmp_path, answers, extra, needle):
    f = tmp_path / "answers.yaml"
    f.write_text(answers)
    sessions = tmp_path / "sessions"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    proc = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), *extra, "--answers", str(f),
                           "--backend", "offline", "--sessions-dir", str(sessions)],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not sessions.exists() or not any(sessions.iterdir())  # no work started


def test_api_and_mcp_refuse_a_misspelled_column(tmp_path):
    from dsagent import run_task
    from dsagent.mcp_server import build_server

    with pytest.raises(BadInput, match="id_columns: 'yeer' is not a column.*did you mean 'year'"):
        run_task("g", EXAMPLE, target="species", answers={"id_columns": ["yeer"]}, backend="offline",
                 sessions_dir=tmp_path / "api")
    data = tmp_path / "data"
    data.mkdir()
    (data / "penguins.csv").write_bytes(EXAMPLE.read_bytes())
    server = build_server([data], tmp_path / "mcp")

    async def go():
        async with Client(server) as client:
            return await client.call_tool("start_ml_task", {
                "data": "penguins.csv", "goal": "g", "target": "species", "backend": "offline",
                "answers": {"group_column": "Island"}})

    try:
        r = anyio.run(go)
    finally:
        server.app.close()
    assert r.is_error and "group_column: 'Island' is not a column" in r.content[0].text and "'island'" in r.content[0].text
    assert not list((tmp_path / "mcp").glob("*/session.json"))
    assert json.dumps(r.content[0].text).count("\\n") == 0  # one line
