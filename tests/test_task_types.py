"""Task types as plugins: the built-ins arrive through the `dsagent.task_types` entry points like a
plugin's, `dsagent tools` lists them with their package, and the CLI accepts what is installed."""

import json
import subprocess
import sys
from types import SimpleNamespace

from dsagent.tools.task_types import TaskType


def test_dsagent_tools_lists_task_types_with_their_package(tmp_path):
    out = subprocess.run([sys.executable, "-m", "dsagent.cli", "tools"], capture_output=True, text=True, cwd=tmp_path,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    section = out.stdout.split("task types:")[1].split("model families:")[0]
    rows = {line.split()[0]: line.split()[1] for line in section.splitlines() if line.startswith("  ")}
    assert rows == {name: "dsagent" for name in ("binary", "multiclass", "regression", "clustering", "anomaly", "forecast", "ranking")}


def test_unknown_task_is_one_line_bad_input(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,y\n1,2\n3,4\n")
    (tmp_path / "answers.yaml").write_text("task: quantile\n")
    out = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", str(data), "--target", "y", "--backend", "offline",
                          "--answers", str(tmp_path / "answers.yaml"), "--sessions-dir", str(tmp_path / "s")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 2 and "unknown task 'quantile'" in out.stderr and "Traceback" not in out.stderr, out.stderr


class _SeriesTask(TaskType):
    """A plugin-style task with a target that fits its own models, as forecast does: its own steps."""

    @property
    def needs_target(self):
        return True

    def step_args(self, step, target):
        return {"target": target} if step == "fit_series" else {}

    def summary_record(self, artifacts_dir, record_of):
        return record_of("fit_series") or None

    def summary(self, record):
        return f"Fitted {record['what']}."


def _turn(backend, conversation, state):
    gen = backend.stream_turn(conversation, [], state)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


def test_autopilot_walks_any_task_types_steps_with_its_args_and_summary(tmp_path, monkeypatch):
    """Every task type without a `prediction` (forecast included) goes through one walker: its steps in
    order, its step_args and step_text, then its summary; none is special-cased by name."""
    from dsagent.backends.autopilot import AutopilotBackend
    from dsagent.tools import task_types as registry

    tt = _SeriesTask("series", "a plugin's series task", None, steps=("profile_data", "fit_series", "write_report"),
                     step_text={"fit_series": "Fitting the series."})
    monkeypatch.setattr(registry, "_TYPES", registry.task_types() | {"series": tt})
    (tmp_path / "fit.json").write_text(json.dumps({"what": "3 series"}))
    state = SimpleNamespace(answers={"task": "series", "target": "y"}, assumptions=[], time_budget=60,
                            session=SimpleNamespace(artifacts_dir=tmp_path), seconds_left=lambda: 50.0)
    backend, conversation, calls = AutopilotBackend(), [], []
    for _ in range(4):
        turn = _turn(backend, conversation, state)
        if not turn.tool_calls:
            break
        call = turn.tool_calls[0]
        calls.append((call.name, call.arguments, turn.text))
        record = {"record": "fit.json"} if call.name == "fit_series" else {}
        conversation.append({"role": "tool", "results": [{"name": call.name, "ok": True, **record}]})
    assert [c[0] for c in calls] == ["profile_data", "fit_series", "write_report"]
    assert calls[1][1:] == ({"target": "y"}, "Fitting the series.")
    assert turn.text.startswith("Fitted 3 series.")
