"""Third-party packages add model families and task types through entry points, with no edit to
dsagent: installed (into a temp venv reusing this environment's packages, or a target dir on
PYTHONPATH), `dsagent tools` lists them with their package and `dsagent run` uses them through the
autopilot."""

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugins" / "dsagent-knn"


def _plugin_venv(tmp_path: Path) -> Path:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    site = next((env_dir / "lib").glob("python*/site-packages"))
    deps = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    # addsitedir (not a plain path line) also runs that directory's .pth files: dsagent's editable install.
    (site / "zz_project_deps.pth").write_text(f"import site; site.addsitedir({str(deps)!r})\n")
    python = env_dir / "bin" / "python"
    # A regular (not editable) install from a copy: the sandboxed worker sees site-packages, not the
    # checkout's examples/, and the build leaves nothing in the source tree.
    source = shutil.copytree(PLUGIN, tmp_path / "plugin")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", str(source)], check=True, capture_output=True, cwd=tmp_path)
    return python


def test_installed_family_plugin_is_listed_and_trained(tmp_path):
    python = _plugin_venv(tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    listing = subprocess.run([str(python), "-m", "dsagent.cli", "tools"], capture_output=True, text=True, cwd=tmp_path,
                             env=env, timeout=60)
    assert listing.returncode == 0, listing.stderr[-2000:]
    rows = {line.split()[0]: line.split()[1] for line in listing.stdout.splitlines() if line.startswith("  ")}
    assert rows["knn"] == "dsagent-knn" and rows["xgboost"] == "dsagent"

    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    data = tmp_path / "blobs.csv"
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")}).to_csv(data, index=False)
    # The answers may name a plugin's family like a built-in one (model_families: only these are candidates).
    (tmp_path / "answers.yaml").write_text("model_families: [knn, linear]\n")
    run = subprocess.run([str(python), "-m", "dsagent.cli", "run", str(data), "--target", "y", "--backend", "offline",
                          "--time-budget", "20", "--max-trials", "1", "--sessions-dir", str(tmp_path / "s"), "--json",
                          "--answers", str(tmp_path / "answers.yaml")],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    board = json.loads((Path(result["session_dir"]) / "artifacts" / "leaderboard.json").read_text())
    assert {r["family"] for r in board} <= {"baseline", "knn", "linear"}, board
    knn = next((r for r in board if r["family"] == "knn"), None)
    assert knn is not None, (board, run.stderr[-3000:])
    assert knn["cv_mean"] > 0.9  # roc_auc on a linearly separable pair of blobs


COUNT_PLUGIN = ROOT / "examples" / "plugins" / "dsagent-count"


@pytest.fixture(scope="module")
def count_plugin(tmp_path_factory) -> dict[str, str]:
    """dsagent-count installed once for this module into a target dir (entry points and all), and the
    environment that puts it on the path of the CLI and of its sandboxed worker."""
    tmp = tmp_path_factory.mktemp("count_plugin")
    source = shutil.copytree(COUNT_PLUGIN, tmp / "src")  # the build leaves nothing in the checkout
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "--target", str(tmp / "site"), str(source)],
                   check=True, capture_output=True, cwd=tmp)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "PYTHONPATH": str(tmp / "site")}


def test_plugin_task_type_and_family_are_listed_with_their_package(count_plugin, tmp_path):
    listing = subprocess.run([sys.executable, "-m", "dsagent.cli", "tools"], capture_output=True, text=True,
                             cwd=tmp_path, env=count_plugin, timeout=60)
    assert listing.returncode == 0, listing.stderr[-2000:]
    types, families = listing.stdout.split("task types:")[1].split("model families:")
    row = lambda section, name: next(line.split()[1] for line in section.splitlines() if line.split()[:1] == [name])
    assert row(types, "count") == "dsagent-count" and row(types, "regression") == "dsagent"
    assert row(families, "poisson_glm") == "dsagent-count"
    assert row(listing.stdout.split("task types:")[0], "check_dispersion") == "dsagent-count"


def test_plugin_task_type_runs_from_the_cli_with_every_deliverable(count_plugin, tmp_path):
    """`dsagent run DATA --task count` through the autopilot, with no edit to dsagent: the task type's
    metric and candidates, an executed notebook, and predict writes counts that are never negative."""
    rng = np.random.default_rng(0)
    x1, x2, shop = rng.normal(size=240), rng.normal(size=240), rng.choice(["a", "b", "c"], 240)
    visits = rng.poisson(np.exp(0.5 + 0.6 * x1 - 0.4 * x2 + 0.5 * (shop == "b")))
    data = tmp_path / "visits.csv"
    pd.DataFrame({"x1": x1.round(3), "x2": x2.round(3), "shop": shop, "visits": visits}).to_csv(data, index=False)
    cmd = [sys.executable, "-m", "dsagent.cli"]
    run = subprocess.run(cmd + ["run", str(data), "--target", "visits", "--task", "count", "--backend", "offline",
                                "--time-budget", "15", "--max-trials", "2", "--sessions-dir", str(tmp_path / "s"), "--json"],
                         capture_output=True, text=True, cwd=tmp_path, env=count_plugin, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["status"] == "completed" and result["task"] == "count" and result["metric"] == "poisson_deviance"
    assert result["test_score"] < result["baseline_score"]
    families = {r["family"] for r in result["leaderboard"]}
    assert "poisson_glm" in families and "linear" not in families  # Ridge can predict negative counts: left out
    for key in ("model", "report", "model_card", "notebook", "monitoring"):
        assert result["artifacts"][key] and Path(result["artifacts"][key]).exists(), key
    assert "Output: the expected count per row" in Path(result["artifacts"]["model_card"]).read_text()  # its section
    notebook = json.loads(Path(result["artifacts"]["notebook"]).read_text())
    errors = [o for c in notebook["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors[0]["evalue"] if errors else ""
    out = tmp_path / "pred.csv"
    pred = subprocess.run(cmd + ["predict", result["session_dir"], str(data), "-o", str(out)], capture_output=True,
                          text=True, cwd=tmp_path, env=count_plugin, timeout=120)
    assert pred.returncode == 0, pred.stderr[-2000:]
    assert (pd.read_csv(out)["prediction"] >= 0).all()
    # Per-row explanations read the output shape (regression), not the task's own name.
    rows = tmp_path / "rows.csv"
    pd.read_csv(data).head(5).to_csv(rows, index=False)
    explain = subprocess.run(cmd + ["explain", result["session_dir"], str(rows), "-o", str(tmp_path / "why.csv")],
                             capture_output=True, text=True, cwd=tmp_path, env=count_plugin, timeout=120)
    assert explain.returncode == 0, explain.stderr[-2000:]
    assert "contrib_x1" in pd.read_csv(tmp_path / "why.csv").columns


def test_count_task_refuses_targets_that_are_not_counts(monkeypatch):
    from dsagent.tools.registry import ToolError

    monkeypatch.syspath_prepend(str(COUNT_PLUGIN))
    from dsagent_count import COUNT

    assert COUNT.check_target(pd.Series([0, 3, 1]), "visits").classes is None
    for bad, why in (([0, -1, 2], "negative"), ([0.5, 1, 2], "fractional"), (["a", "b"], "not numeric")):
        with pytest.raises(ToolError, match=why):
            COUNT.check_target(pd.Series(bad), "visits")


def _claude_runs(env: dict[str, str], tmp_path: Path, personas: dict[str, str]) -> dict[str, list[dict]]:
    """One `dsagent run` per persona, at the same time (each mostly waits on its worker's start), whose
    model (a fake Messages API each) calls the plugin's tool once, then stops: the request bodies each sent."""
    from fake_anthropic import FakeAnthropic, message

    data = tmp_path / "visits.csv"
    pd.DataFrame({"x": range(40), "visits": [i % 4 for i in range(40)]}).to_csv(data, index=False)
    started = {}
    try:
        for name, persona in personas.items():
            fake = FakeAnthropic().start()
            fake.push(message([{"type": "tool_use", "id": "toolu_01", "name": "check_dispersion",
                                "input": {"target": "visits"}}], "tool_use"),
                      message([{"type": "text", "text": "Checked."}], "end_turn"))
            started[name] = fake, subprocess.Popen(
                [sys.executable, "-m", "dsagent.cli", "run", str(data), "--target", "visits", "--persona", persona,
                 "--time-budget", "30", "--sessions-dir", str(tmp_path / name), "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                env=env | {"ANTHROPIC_API_KEY": "sk-test", "ANTHROPIC_BASE_URL": fake.url, "DSAGENT_MODEL": "claude-sonnet-5-5"})
        stderr = {name: proc.communicate(timeout=120)[1] for name, (_, proc) in started.items()}
    finally:
        for fake, proc in started.values():
            if proc.poll() is None:  # timed out: no run outlives the test
                proc.kill()
            fake.stop()
    for name, (fake, _) in started.items():
        assert len(fake.requests) == 2, stderr[name][-3000:]
    return {name: [r["body"] for r in fake.requests] for name, (fake, _) in started.items()}


def test_persona_allows_plugin_tools_by_package(count_plugin, tmp_path):
    """`plugin:dsagent-count` in a persona's tools puts that package's tools in the agent's tool list
    (sent to the real SDK's fake server) and the call runs in the sandbox; a persona without it does not
    offer the tool, and a call to it is refused."""
    persona = tmp_path / "counter.md"
    persona.write_text("---\nname: counter\ndescription: counts\ntools: profile_data, plugin:dsagent-count\n---\n"
                       "You model counts.\n")
    runs = _claude_runs(count_plugin, tmp_path, {"allowed": str(persona), "refused": "data-scientist"})
    allowed = runs["allowed"]
    assert {t["name"] for t in allowed[0]["tools"]} == {"profile_data", "check_dispersion"}
    result = json.dumps(allowed[1]["messages"][-1]["content"])
    assert '"is_error": true' not in result and "dispersion" in result, result[:1000]

    refused = runs["refused"]
    assert "check_dispersion" not in {t["name"] for t in refused[0]["tools"]}
    result = refused[1]["messages"][-1]["content"][0]
    assert result.get("is_error") and "unknown tool" in json.dumps(result)
