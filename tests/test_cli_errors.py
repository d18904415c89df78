"""Bad usage and bad input: one line on stderr, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


def dsagent(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "dsagent.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("args, needle", [
    (["run"], "needs a DATA file"),
    (["run", "nope.csv", "--target", "y"], "not found"),
    (["run", str(EXAMPLE)], "no target column"),
    (["run", str(EXAMPLE), "--target", "y", "--backend", "gpt"], "invalid choice"),
    (["predict", "no-such-session", str(EXAMPLE), "-o", "x.csv"], "no model or session"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_usage_is_one_line_exit_2(args, needle, tmp_path):
    proc = dsagent(*args, "--sessions-dir", str(tmp_path)) if args and args[0] in ("run", "predict") else dsagent(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_answers_file(tmp_path):
    bad = tmp_path / "answers.yaml"
    bad.write_text("target: species\ncolour: blue\n")
    proc = dsagent("run", str(EXAMPLE), "--answers", str(bad), "--sessions-dir", str(tmp_path))
    assert proc.returncode == 2 and "unknown key(s) colour" in proc.stderr


def test_claude_backend_without_key_is_clear(tmp_path):
    proc = dsagent("run", str(EXAMPLE), "--target", "species", "--backend", "claude", "--sessions-dir", str(tmp_path))
    assert proc.returncode == 2 and "ANTHROPIC_API_KEY" in proc.stderr


def test_wrong_target_is_bad_input_before_any_session(tmp_path):
    proc = dsagent("run", str(EXAMPLE), "--target", "specis", "--backend", "offline", "--time-budget", "20",
                   "--sessions-dir", str(tmp_path), "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "did you mean 'species'" in lines[0]  # suggests the close name
    assert not any(tmp_path.iterdir())  # no session for a run that never started
    assert "Traceback" not in proc.stderr
