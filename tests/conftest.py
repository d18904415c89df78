"""Shared fixtures. Tests never touch the network and never see a real API key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


# Seconds per file in a 2-worker run (pytest --durations=0 summed per file, setup included, on an idle
# machine, 2026-12-03 16:06 UTC), for the files over 20 s. `--dist loadfile` hands files to the two workers in
# collection order, so the alphabetical order left long files (test_text, test_resume, test_versions) to the end,
# one worker still busy with them while the other idled. Longest first balances the finish; a file not
# listed keeps its place after these. Stale figures only cost balance, never a test.
LONGEST_FILES = {
    "test_model_quality.py": 73, "test_resume.py": 64, "test_plugins.py": 55, "test_ask_about.py": 45, "test_forecast.py": 35,
    "test_derived_cli.py": 33, "test_budget_end_to_end.py": 32, "test_chat_goal_runs.py": 31, "test_text.py": 30,
    "test_unsupervised.py": 29, "test_ranking.py": 28, "test_run_python.py": 27, "test_honest_splits.py": 27, "test_api.py": 25,
    "test_sandbox.py": 25, "test_monitor_cli.py": 25, "test_mcp.py": 25, "test_versions.py": 24, "test_deliverables.py": 23,
}


def pytest_collection_modifyitems(items):
    # A stable sort on a per-file key: each file stays whole and in its own order (module fixtures).
    items.sort(key=lambda item: -LONGEST_FILES.get(item.path.name, 0))


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch, tmp_path_factory):
    # The developer's shell may carry a key: tests must behave as they do in CI.
    for name in list(os.environ):
        if name.startswith("ANTHROPIC_") or name in ("DSAGENT_MODEL", "DSAGENT_SESSIONS_DIR"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # The tool catalogue (tools/tool_catalogue.py) of this test session, not the developer's ~/.cache:
    # shared by the xdist workers (their common temp directory), so the first run writes it for all.
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("DSAGENT_CACHE_DIR", str((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "dsagent-cache"))


@pytest.fixture
def ctrl_c_delivered():
    """For a test that sends Ctrl-C (SIGINT) to this process or to a child it starts: Python's own
    handler, so the signal raises KeyboardInterrupt. What changes it is the launcher, not an earlier
    test: a shell script's background job (`.ci/run ... &`, a CI step in the background) starts
    with SIGINT ignored, Python then never installs its handler, and pytest, its xdist workers and
    every child they start inherit the ignore, so the Ctrl-C would do nothing."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def sessions_dir(tmp_path) -> Path:
    d = tmp_path / "sessions"
    d.mkdir()
    return d


def shared_across_workers(tmp_path_factory, name: str, build):
    """What build(directory) returns (JSON-able), made once for the whole test session: under
    pytest-xdist the workers share one copy (the pattern pytest-xdist documents: a FileLock on a
    file under the workers' common temp directory, so the first worker builds it and the other
    reads it, or waits for it), so an end-to-end run several test files read is paid once, not
    once per worker. Without xdist: built in this session's own temp directory."""
    import json

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(tmp_path_factory.mktemp(name))
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp().parent  # this session's, common to its workers
    done = root / f"{name}.json"
    with FileLock(str(done) + ".lock"):
        if not done.is_file():
            directory = root / name
            directory.mkdir()
            done.write_text(json.dumps(build(directory)))
        return json.loads(done.read_text())


@pytest.fixture(scope="session")
def offline_run_output(tmp_path_factory):
    """ONE full offline `dsagent run --json` on the bundled example, shared by every test that
    only reads its artifacts (keeps the suite inside its time budget), and by every xdist worker:
    the finished process. A test that changes the session copies it first (shutil.copytree)."""
    import subprocess
    import sys

    def build(sessions: Path) -> dict:
        answers = sessions / "answers.yaml"
        # fallback: what `dsagent serve` answers for a row the model cannot score (tests/test_serve.py)
        answers.write_text("segment_columns: [island]\ngoal: identify the penguin species from field measurements\n"
                           "fallback: Adelie\n")
        cmd = [sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "species", "--backend", "offline",
               "--time-budget", "45", "--max-trials", "4", "--sessions-dir", str(sessions), "--answers", str(answers),
               "--json"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
        return {"args": cmd, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}

    proc = subprocess.CompletedProcess(**shared_across_workers(tmp_path_factory, "shared-offline-run", build))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def offline_run(offline_run_output):
    """The shared run's RunResult (see offline_run_output)."""
    from dsagent.result import RunResult

    return RunResult.model_validate_json(offline_run_output.stdout)


@pytest.fixture
def dsagent_main(capsys, monkeypatch):
    """`dsagent ARGS...` through the CLI's main(argv) in this process, as a CompletedProcess (the
    return code is the exit code: `python -m dsagent.cli` passes main's to sys.exit). For the
    commands that need no process of their own (predict, monitor, explain): each subprocess paid
    a Python start and the imports of pandas and scikit-learn, seconds per call. A test of what
    only a real process shows (signals, the sandbox, the entry point) keeps its subprocess."""
    import signal
    import subprocess

    from dsagent.cli import main

    def call(*args, cwd: Path | None = None) -> subprocess.CompletedProcess:
        argv = [str(a) for a in args]
        capsys.readouterr()  # what the test printed before is not this command's output
        sigterm = signal.getsignal(signal.SIGTERM)  # main() installs its own for the CLI process
        try:
            with monkeypatch.context() as m:
                if cwd is not None:
                    m.chdir(cwd)
                code = main(argv)
        finally:
            signal.signal(signal.SIGTERM, sigterm)
        out = capsys.readouterr()
        return subprocess.CompletedProcess(["dsagent", *argv], code, out.out, out.err)

    return call
