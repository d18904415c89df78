"""The Python API, the delegate tool, and every example of docs/embedding.md.

One full offline run: the doc's Assistant example, on a DataFrame (module-scoped, shared by the
tests that read its result). The other examples stop at needs_input, which comes after profiling.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dsagent.answers import ANSWER_KEYS, BadInput
from dsagent.cli_parser import build_parser
from dsagent.result import RunResult
from dsagent.tasks import MCP_SESSION_TOOLS
from fake_anthropic import FakeAnthropic, Reply

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"
DOC = ROOT / "docs" / "embedding.md"
VENV_BIN = Path(sys.executable).parent


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)


def python_block(marker: str) -> str:
    found = [b for b in blocks("python") if marker in b]
    assert len(found) == 1, f"expected one python example containing {marker!r}"
    return found[0]


def exec_example(code: str, cwd: Path) -> tuple[dict, str]:
    """Run a doc example in `cwd` (where penguins.csv is); returns its globals and what it printed."""
    shutil.copy(EXAMPLE, cwd / "penguins.csv")
    out = io.StringIO()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        scope: dict = {"__name__": "__doc_example__"}
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(DOC), "exec"), scope)
    finally:
        os.chdir(old)
    return scope, out.getvalue()


@pytest.fixture(scope="module")
def assistant_run(tmp_path_factory):
    """The doc's Assistant example: a DataFrame, streamed events, needs_input, resume, completed."""
    cwd = tmp_path_factory.mktemp("assistant")
    scope, printed = exec_example(python_block("Assistant("), cwd)
    return {"cwd": cwd, "scope": scope, "printed": printed, "result": scope["result"]}


# ------------------------------------------------------------------------------ Python API


@pytest.mark.slow
def test_full_run_on_a_dataframe_returns_a_result_whose_artifacts_exist(assistant_run):
    result: RunResult = assistant_run["result"]
    assert isinstance(result, RunResult)
    assert result.status == "completed", result.error
    assert result.test_score is not None and result.test_ci is not None and result.metric
    for key in ("model", "report", "model_card", "monitoring", "profile", "transcript"):
        assert result.artifacts[key] and Path(result.artifacts[key]).is_file(), key
    sessions = assistant_run["cwd"] / "dsagent-sessions"
    assert Path(result.session_dir).parent.resolve() == sessions.resolve()
    # The DataFrame was written once, under the sessions directory, and the session records it.
    inputs = list((sessions / "inputs").iterdir())
    assert len(inputs) == 1 and inputs[0].suffix == ".parquet"
    meta = json.loads((Path(result.session_dir) / "session.json").read_text())
    assert Path(meta["data_path"]) == inputs[0].resolve()
    assert "finished profile_data ok" in assistant_run["printed"]
    assert result.artifacts["report"] in assistant_run["printed"]
    assert json.loads(result.model_dump_json())["session_id"] == result.session_id


@pytest.mark.slow
def test_streamed_run_paused_then_resumed_in_the_same_session(assistant_run):
    assistant = assistant_run["scope"]["assistant"]
    result = assistant_run["result"]
    events = [json.loads(line) for line in Path(result.artifacts["transcript"]).read_text().splitlines()]
    paused = [e for e in events if e["type"] == "tool_results" and any(r.get("kind") == "needs_input" for r in e["results"])]
    assert paused, "the example's first run should stop on a question (on_questions='ask')"
    assert any(e["type"] == "resume" for e in events)
    assert assistant.result is result
    assert result.assumptions == [] or all(isinstance(a, str) for a in result.assumptions)


def test_quickstart_run_task_returns_needs_input_with_questions(tmp_path):
    scope, printed = exec_example(python_block("run_task("), tmp_path)
    result = scope["result"]
    assert result.status == "needs_input" and result.questions
    assert all(q.key in ANSWER_KEYS for q in result.questions)
    assert "target" not in {q.key for q in result.questions}
    assert printed.splitlines()[0] == "needs_input"


def test_events_end_with_done_carrying_the_result(tmp_path, sessions_dir):
    from dsagent import Assistant

    assistant = Assistant(backend="offline", sessions_dir=sessions_dir, time_budget=30)
    kinds = []
    for event in assistant.events(None, EXAMPLE):  # no target, no goal: it must ask
        kinds.append(event.kind)
        if event.kind == "done":
            assert isinstance(event.data["result"], RunResult)
    assert kinds[-1] == "done" and "needs_input" in kinds and "tool_end" in kinds
    first = assistant.result
    assert first.status == "needs_input" and "target" in {q.key for q in first.questions}
    # A partial answer: it resumes the same session, and asks only what is still open.
    second = assistant.resume(first.session_id, {"target": "species", "goal": "field guide"})
    assert second.session_id == first.session_id and second.status == "needs_input"
    assert {q.key for q in second.questions}.isdisjoint({"target", "goal"})


def test_bad_input_is_a_one_line_error(tmp_path, sessions_dir):
    from dsagent import run_task

    with pytest.raises(BadInput, match="not found"):
        run_task("g", tmp_path / "missing.csv", sessions_dir=sessions_dir)
    with pytest.raises(BadInput, match="unknown key"):
        run_task("g", EXAMPLE, answers={"colour": "red"}, sessions_dir=sessions_dir)
    with pytest.raises(BadInput, match="path or a pandas DataFrame"):
        run_task("g", 42, sessions_dir=sessions_dir)
    with pytest.raises(BadInput, match="on_questions"):
        run_task("g", EXAMPLE, on_questions="maybe", sessions_dir=sessions_dir)


def test_dataframe_is_written_once_by_content(tmp_path):
    import pandas as pd

    from dsagent.api import write_frame

    frame = pd.read_csv(EXAMPLE)
    a = write_frame(frame, tmp_path)
    b = write_frame(frame.copy(), tmp_path)
    assert a == b and a.suffix == ".parquet" and len(list(tmp_path.iterdir())) == 1
    odd = pd.DataFrame({0: [1, 2], 1: ["x", "y"]})  # non-string column names: CSV instead
    assert write_frame(odd, tmp_path).suffix == ".csv"
    indexed = frame.set_index("species")
    assert "species" in pd.read_parquet(write_frame(indexed, tmp_path)).columns


def test_importing_the_api_pulls_no_ml_or_sdk_library():
    code = ("import sys, agent; from dsagent import run_task, Assistant, as_anthropic_tool; "
            "print(sorted(m for m in ('pandas', 'sklearn', 'mcp', 'anthropic', 'xgboost') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- delegate tool


def test_delegate_tool_definition_and_handler_errors(tmp_path, sessions_dir):
    from dsagent import as_anthropic_tool

    tool, handle = as_anthropic_tool(backend="offline", sessions_dir=sessions_dir, roots=[tmp_path])
    assert tool["name"] == "dsagent" and tool["description"]
    props = tool["input_schema"]["properties"]
    assert {"goal", "data", "target", "answers", "session_id", "time_budget"} <= set(props)
    assert set(props["answers"]["properties"]) == set(ANSWER_KEYS)
    json.dumps(tool)  # plain JSON, as the Messages API wants it
    outside = json.loads(handle({"data": str(EXAMPLE), "goal": "x"}))
    assert outside["status"] == "failed" and "outside the allowed data roots" in outside["error"]
    assert "give `data`" in json.loads(handle({"goal": "x"}))["error"]
    assert "unknown argument" in json.loads(handle({"data": "a.csv", "colour": "red"}))["error"]


def test_doc_delegate_example_with_a_parent_on_the_anthropic_sdk(tmp_path, monkeypatch):
    fake = FakeAnthropic().start()
    try:
        usage = {"input_tokens": 10, "output_tokens": 5}
        call = {"type": "tool_use", "id": "toolu_1", "name": "dsagent",
                "input": {"data": "penguins.csv", "goal": "species for a field guide", "target": "species"}}
        fake.push(
            Reply(body={"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
                        "content": [call], "stop_reason": "tool_use", "stop_sequence": None, "usage": usage}),
            Reply(body={"id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-5-5",
                        "content": [{"type": "text", "text": "dsagent asks how interpretable the model must be."}],
                        "stop_reason": "end_turn", "stop_sequence": None, "usage": usage}),
        )
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        scope, printed = exec_example(python_block("as_anthropic_tool("), tmp_path)
    finally:
        fake.stop()
    assert printed.strip() == "dsagent asks how interpretable the model must be."
    first, second = fake.requests[0]["body"], fake.requests[1]["body"]
    assert first["tools"][0]["name"] == "dsagent"
    tool_result = second["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == "toolu_1"
    result = json.loads(tool_result["content"])
    assert result["status"] == "needs_input" and result["questions"]
    assert (tmp_path / "dsagent-sessions" / result["session_id"]).is_dir()


# ----------------------------------------------------------------------- the doc's config


def _dsagent_command(command: str) -> Path:
    """The doc's command, resolved here: `dsagent` on the PATH (this venv's), or a placeholder path
    ending in bin/dsagent, which is this venv's console script."""
    if command == "dsagent":
        found = shutil.which("dsagent", path=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))
        assert found, "dsagent is not on the PATH"
        return Path(found)
    assert command.endswith("/bin/dsagent"), command
    return VENV_BIN / "dsagent"


def _check_mcp_args(args: list[str]) -> None:
    parsed = build_parser().parse_args(args)
    assert parsed.command == "mcp" and parsed.root and parsed.sessions_dir


def test_doc_json_configs_resolve_and_parse():
    configs = [json.loads(b) for b in blocks("json")]
    assert len(configs) >= 2, "the .mcp.json and Claude Desktop examples"
    for config in configs:
        server = config["mcpServers"]["dsagent"]
        exe = _dsagent_command(server["command"])
        assert exe.is_file() and os.access(exe, os.X_OK)
        _check_mcp_args(server["args"])
    desktop = [c["mcpServers"]["dsagent"] for c in configs if c["mcpServers"]["dsagent"]["command"].startswith("/")]
    assert desktop and all(Path(a).is_absolute() for a in desktop[0]["args"][1:] if not a.startswith("--"))


def test_doc_shell_lines_parse(tmp_path):
    lines = [line.strip() for b in blocks("bash") for line in b.splitlines() if line.strip()]
    adds = [shlex.split(line) for line in lines if line.startswith("claude mcp add")]
    stdio = [a for a in adds if "--" in a]
    assert len(stdio) >= 2
    project = None
    for argv in stdio:
        server_argv = argv[argv.index("--") + 1:]
        assert argv[argv.index("--") - 1] == "dsagent"  # registered as "dsagent": tools are mcp__dsagent__*
        _dsagent_command(server_argv[0])
        _check_mcp_args(server_argv[1:])
        if "-s" in argv and argv[argv.index("-s") + 1] == "project":
            project = server_argv
    # `claude mcp add -s project` and the .mcp.json shown after it say the same thing.
    mcp_json = json.loads(blocks("json")[0])["mcpServers"]["dsagent"]
    assert project == [mcp_json["command"], *mcp_json["args"]]
    http = [a for a in adds if "--transport" in a]
    served = [shlex.split(line) for line in lines if line.startswith("dsagent mcp --http")]
    assert http and served
    port = build_parser().parse_args(served[0][1:]).http
    assert http[0][-1] == f"http://127.0.0.1:{port}/mcp" and http[0][http[0].index("--transport") + 1] == "http"
    # The subagent line: run its Python and check the file it writes.
    py = [line for line in lines if line.startswith("python -c")]
    assert len(py) == 1
    argv = shlex.split(py[0].split(">")[0])
    out = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    front = re.match(r"---\n(.*?)\n---\n", out, re.S)
    assert front
    import yaml

    meta = yaml.safe_load(front.group(1))
    tools = [t.strip() for t in meta["tools"].split(",")]
    assert meta["name"] == "data-scientist" and all(t.startswith("mcp__dsagent__") for t in tools)
    from dsagent.tools.registry import all_tools

    exposed = {n for n, s in all_tools().items() if not s.runs_in_loop} | set(MCP_SESSION_TOOLS)
    assert {t.removeprefix("mcp__dsagent__") for t in tools} <= exposed
    assert "mcp__dsagent__ask_user" not in tools and "mcp__dsagent__load_data" in tools
    shown = [b for b in blocks("markdown") if "name: data-scientist" in b]
    assert shown and shown[0].startswith("---\nname: data-scientist")
