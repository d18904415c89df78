"""Crash safety: kill -9 a run mid-way, then `dsagent run --resume` continues from the last
completed step; a torn transcript line is dropped; SIGTERM leaves no stray worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dsagent.session import Session, read_transcript

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "penguins.csv"


def _start(sessions: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    return subprocess.Popen([sys.executable, "-m", "dsagent.cli", "run", str(EXAMPLE), "--target", "sex", "--backend", "offline",
                             "--time-budget", "40", "--max-trials", "2", "--sessions-dir", str(sessions), "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def _wait_for(sessions: Path, tool: str, timeout: float = 120) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for d in sessions.iterdir():
            t = d / "transcript.jsonl"
            if t.exists() and f'"name": "{tool}", "ok": true' in t.read_text():
                return d
        time.sleep(0.3)
    raise AssertionError(f"{tool} never completed")


def _called(session_dir: Path) -> list[str]:
    return [c["name"] for e in read_transcript(session_dir / "transcript.jsonl") if e["type"] == "assistant"
            for c in e["tool_calls"]]


def test_kill_9_then_resume_continues(tmp_path):
    proc = _start(tmp_path)
    session_dir = _wait_for(tmp_path, "define_task")
    proc.kill()  # SIGKILL: no cleanup at all
    proc.wait(timeout=10)
    # simulate the torn last line a kill during a write can leave
    with open(session_dir / "transcript.jsonl", "a") as fh:
        fh.write('{"t": 1, "type": "assistant", "text": "half a li')
    before = _called(session_dir)
    assert "define_task" in before
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    resumed = subprocess.run([sys.executable, "-m", "dsagent.cli", "run", "--resume", session_dir.name, "--sessions-dir",
                              str(tmp_path), "--backend", "offline", "--time-budget", "25", "--json"], capture_output=True, text=True, cwd=ROOT,
                             env=env, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed" and result["session_id"] == session_dir.name
    after = _called(session_dir)
    assert after.count("profile_data") == 1 and after.count("define_task") == 1  # completed steps are not redone
    assert "evaluate_model" in after and Path(result["artifacts"]["model"]).is_file()


def test_torn_last_line_is_dropped(tmp_path):
    s = Session.create(tmp_path, data_path=None, persona="p", backend="offline")
    s.append({"type": "user", "text": "hello"})
    with open(s.transcript_path, "a") as fh:
        fh.write('{"type": "assistant", "te')
    events = s.events()
    assert [e["type"] for e in events] == ["user"]


def test_sigterm_stops_worker(tmp_path):
    proc = _start(tmp_path)
    session_dir = _wait_for(tmp_path, "profile_data")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    time.sleep(1.0)
    stray = subprocess.run(["pgrep", "-f", f"dsagent.worker.*|{session_dir.name}"], capture_output=True, text=True)
    workers = [p for p in stray.stdout.split() if p and _cwd_in(p, session_dir)]
    assert not workers, f"stray worker processes: {workers}"
    meta = json.loads((session_dir / "session.json").read_text())
    assert meta["status"] in ("interrupted", "failed")


def _cwd_in(pid: str, session_dir: Path) -> bool:
    try:
        return str(session_dir) in os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
