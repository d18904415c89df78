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

from quick import QUICK_FAMILIES

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


# The workflow's steps, each the last one done when the process dies. The CLI's test hook
# DSAGENT_TEST_KILL_AFTER=<tool> makes it SIGKILL itself right after that tool's result is
# persisted (a real kill -9 of the real process, at an exact point: a watcher polling the
# transcript would miss fast steps such as define_task). ask_user, build_ensemble, explain_model and
# plan_monitoring die with their neighbours' runs and are counted too.
KILL_AFTER = ["profile_data", "define_task", "train_models", "tune_model", "evaluate_model", "write_report",
              "write_notebook"]


def _run_cli(sessions: Path, args: list[str], kill_after: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.pop("DSAGENT_TEST_KILL_AFTER", None)
    if kill_after:
        env["DSAGENT_TEST_KILL_AFTER"] = kill_after
    return subprocess.run([sys.executable, "-m", "dsagent.cli", "run", *args, "--backend", "offline", "--time-budget", "40",
                           "--max-trials", "1", "--sessions-dir", str(sessions), "--json"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)


def _workers_in(session_dir: Path, wait_s: float = 10.0) -> list[str]:
    """Processes still working in the session (a killed run's worker must not outlive it)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = subprocess.run(["pgrep", "-f", "agent"], capture_output=True, text=True).stdout.split()
        stray = [p for p in found if _cwd_in(p, session_dir)]
        if not stray or time.monotonic() > deadline:
            return stray
        time.sleep(0.3)


def test_kill_9_after_every_step_then_resume_runs_each_step_once(tmp_path):
    session_dir: Path | None = None
    sessions = tmp_path / "sessions"
    sessions.mkdir()
    (tmp_path / "quick.yaml").write_text(QUICK_FAMILIES)
    for step in KILL_AFTER:
        args = (["--resume", session_dir.name] if session_dir else
                [str(EXAMPLE), "--target", "sex", "--answers", str(tmp_path / "quick.yaml")])
        proc = _run_cli(sessions, args, kill_after=step)
        session_dir = session_dir or next(sessions.iterdir())
        assert proc.returncode == -signal.SIGKILL, f"not killed after {step}: {proc.returncode} {proc.stderr[-1500:]}"
        last = list(read_transcript(session_dir / "transcript.jsonl"))[-1]
        assert last["type"] == "tool_results" and [r["name"] for r in last["results"]] == [step]
        assert not _workers_in(session_dir), f"a worker outlived the kill after {step}"
        if step == "define_task":  # the torn last line a kill during a write can leave
            with open(session_dir / "transcript.jsonl", "a") as fh:
                fh.write('{"t": 1, "type": "assistant", "text": "half a li')
    assert session_dir is not None
    resumed = _run_cli(sessions, ["--resume", session_dir.name], kill_after=None)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout)
    assert result["status"] == "completed" and result["session_id"] == session_dir.name
    assert Path(result["artifacts"]["model"]).is_file() and Path(result["artifacts"]["notebook"]).is_file()
    events = list(read_transcript(session_dir / "transcript.jsonl"))
    assert sum(e["type"] == "resume" for e in events) == len(KILL_AFTER)
    called = _called(session_dir)
    done = [r["name"] for e in events if e["type"] == "tool_results" for r in e["results"] if r.get("ok")]
    for step in set(called) | set(KILL_AFTER):
        assert called.count(step) == 1 and done.count(step) == 1, (step, called)


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
    stray = subprocess.run(["pgrep", "-f", f"dsagent.sandbox.worker.*|{session_dir.name}"], capture_output=True, text=True)
    workers = [p for p in stray.stdout.split() if p and _cwd_in(p, session_dir)]
    assert not workers, f"stray worker processes: {workers}"
    meta = json.loads((session_dir / "session.json").read_text())
    assert meta["status"] in ("interrupted", "failed")


def test_a_run_abandoned_between_two_events_is_not_left_running(tmp_path):
    """An interrupt that lands while the caller holds control between two events (the CLI printing
    one) never enters the run's generator: it is only closed later. The session must still say it
    did not finish, not "running" (the SIGTERM test above saw that under load)."""
    from dsagent.runtime import Run, RunOptions

    run = Run(RunOptions(data=EXAMPLE, target="sex", backend="offline", sessions_dir=tmp_path, time_budget=40,
                         max_trials=2))
    events = run.events()
    try:
        next(events)
        events.close()  # what the garbage collector does once the interrupt has unwound the caller
    finally:
        run.close()
    meta = json.loads((Path(run.session.dir) / "session.json").read_text())
    assert meta["status"] in ("interrupted", "failed") and meta["error"] == "interrupted"


def _cwd_in(pid: str, session_dir: Path) -> bool:
    try:
        return str(session_dir) in os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
