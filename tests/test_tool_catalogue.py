"""The agent process knows the tools from the catalogue the last import wrote, without importing the
tool modules (and pandas, scikit-learn, scipy with them): tools/tool_catalogue.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from dsagent.asking import AssumeAsker
from dsagent.loop import LoopState, ToolCall, Turn, run_loop
from dsagent.sandbox import CallResult
from dsagent.session import Session
from dsagent.tools import tool_catalogue
from dsagent.tools.registry import all_tools, format_validation_error

ROOT = Path(__file__).resolve().parent.parent

# A fresh process: what agent_tools() gives, and which ML libraries that took.
_PROBE = """
import json, sys
from dsagent.tools.registry import agent_tools
tools = agent_tools()
print(json.dumps({"tools": {n: [type(t).__name__, t.description, t.to_anthropic()["input_schema"], t.runs_in_loop]
                            for n, t in tools.items()},
                  "imported": [m for m in ("pandas", "sklearn", "scipy", "numpy", "matplotlib") if m in sys.modules]}))
"""


def _probe(cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")} | {"DSAGENT_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_the_second_process_reads_the_catalogue_and_imports_no_ml_library(tmp_path):
    first = _probe(tmp_path)  # no catalogue yet: imports the tool modules, writes it
    assert "sklearn" in first["imported"] and len(list(tmp_path.glob("tools-*.json"))) == 1
    second = _probe(tmp_path)
    assert second["imported"] == []
    # The same tools, declared the same way; only the loop-run one (ask_user) is a real ToolSpec.
    assert list(second["tools"]) == list(first["tools"])
    for name, (kind, description, schema, in_loop) in second["tools"].items():
        assert [description, schema, in_loop] == first["tools"][name][1:], name
        assert kind == ("ToolSpec" if in_loop else "CataloguedTool"), name
    real = all_tools()
    assert set(second["tools"]) == set(real)
    assert second["tools"]["train_models"][2] == real["train_models"].input_schema


def test_the_key_follows_the_tool_modules_files(tmp_path, monkeypatch):
    package = tmp_path / "acme_catalogue_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    tools_py = package / "tools.py"
    tools_py.write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    modules = ["dsagent.tools.train", "acme_catalogue_probe.tools"]
    key = tool_catalogue.catalogue_key(modules)
    assert key and tool_catalogue.catalogue_key(modules) == key  # stable while nothing changes
    tools_py.write_text("X = 2  # edited\n")
    assert tool_catalogue.catalogue_key(modules) != key
    assert tool_catalogue.catalogue_key(modules + ["acme_catalogue_probe.missing"]) is None  # cannot tell: import


def test_a_corrupt_catalogue_is_rebuilt(tmp_path):
    _probe(tmp_path)
    [written] = tmp_path.glob("tools-*.json")
    written.write_text("{not json")
    again = _probe(tmp_path)
    assert "sklearn" in again["imported"] and json.loads(written.read_text())["tools"]


def test_a_catalogued_tools_arguments_are_checked_by_the_worker_with_the_same_message(tmp_path):
    real = all_tools()["train_models"]
    entry = tool_catalogue.CataloguedTool("train_models", real.description, real.input_schema, real.module)
    bad = {"models": "not-a-list"}
    try:
        real.validate(bad)
        raise AssertionError("the arguments were meant to be invalid")
    except Exception as exc:  # pydantic.ValidationError
        message = format_validation_error(exc)

    class WorkerValidates:
        calls: list = []

        def run(self, name, args, state, timeout):
            self.calls.append((name, args))
            yield CallResult(False, error=message, kind="invalid_arguments")

    class OneCall:
        name = model = "fake"

        def __init__(self):
            self.turns = [Turn(tool_calls=[ToolCall("1", "train_models", bad)]), Turn(text="done")]
            self.seen: list = []

        def stream_turn(self, conversation, tools, state):
            self.seen.append([dict(m) for m in conversation])
            return self.turns.pop(0)
            yield  # a generator

    session = Session.create(tmp_path, data_path=None, persona="t", backend="fake")
    state = LoopState(session=session, deadline=time.time() + 60, time_budget=60)
    backend, runner = OneCall(), WorkerValidates()
    list(run_loop(backend, state, {"train_models": entry}, runner, AssumeAsker(), [{"role": "user", "text": "go"}]))
    [result] = [m for m in backend.seen[-1] if m["role"] == "tool"][0]["results"]
    assert runner.calls == [("train_models", bad)]  # this process did not import the tool to check them
    assert result["kind"] == "invalid_arguments" and result["content"] == message  # as if checked here


def test_old_catalogues_are_pruned(tmp_path, monkeypatch):
    monkeypatch.setenv("DSAGENT_CACHE_DIR", str(tmp_path))
    spec = all_tools()["train_models"]
    for i in range(tool_catalogue.KEEP + 3):
        tool_catalogue.write_catalogue(f"k{i:02d}", {"train_models": spec})
        os.utime(tmp_path / f"tools-k{i:02d}.json", (1000 + i, 1000 + i))  # written in this order
    kept = sorted(p.name for p in tmp_path.glob("tools-*.json"))
    assert len(kept) == tool_catalogue.KEEP and kept[-1] == f"tools-k{tool_catalogue.KEEP + 2:02d}.json"
    assert tool_catalogue.read_catalogue(f"k{tool_catalogue.KEEP + 2:02d}")[0]["name"] == "train_models"


def test_a_module_outside_any_package_is_keyed_by_its_own_file(tmp_path, monkeypatch):
    """A plugin installed as one file (site-packages/acme.py) must not make the key read every file beside it."""
    (tmp_path / "acme_single_probe.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    key = tool_catalogue.catalogue_key(["acme_single_probe"])
    (tmp_path / "unrelated.py").write_text("Y = 1\n")
    assert tool_catalogue.catalogue_key(["acme_single_probe"]) == key
    (tmp_path / "acme_single_probe.py").write_text("X = 22\n")
    assert tool_catalogue.catalogue_key(["acme_single_probe"]) != key
