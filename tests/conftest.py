"""Shared fixtures. Tests never touch the network and never see a real API key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


@pytest.fixture(autouse=True)
def _no_secrets(monkeypatch):
    # The developer's shell may carry a key: tests must behave as they do in CI.
    for name in list(os.environ):
        if name.startswith("ANTHROPIC_") or name in ("DSAGENT_MODEL", "DSAGENT_SESSIONS_DIR"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


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


@pytest.fixture(scope="session")
def offline_run_output(tmp_path_factory):
    """ONE full offline `dsagent run --json` on the bundled example, shared by every test that
    only reads its artifacts (keeps the suite inside its time budget): the finished process."""
    import subprocess
    import sys

    sessions = tmp_path_factory.mktemp("shared-sessions")
    answers = sessions / "answers.yaml"
    # fallback: what `dsagent serve` answers for a row the model cannot score (tests/test_serve.py)
    answers.write_text("segment_columns: [island]\ngoal: identify the penguin species from field measurements\n"
                       "fallback: Adelie\n")
    cmd = [sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "species", "--backend", "offline",
           "--time-budget", "45", "--max-trials", "4", "--sessions-dir", str(sessions), "--answers", str(answers), "--json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def offline_run(offline_run_output):
    """The shared run's RunResult (see offline_run_output)."""
    from dsagent.result import RunResult

    return RunResult.model_validate_json(offline_run_output.stdout)
