"""The tool worker: limits, crash recovery, secrets, and the isolation layers.

Test-only tools live in tests/sandbox_tools.py and reach the worker through
DSAGENT_TOOL_MODULES. Tests that need a layer this machine lacks are skipped with the
reason `layers()` gives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dsagent.sandbox import CallResult, Limits, Worker, detect, layers, seccomp

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DATA = ROOT / "examples" / "penguins.csv"


def need(name: str) -> dict:
    """The layer's report; SKIP naming the layer when this machine does not have it."""
    info = detect.layers().get(name, {})
    if not info.get("active"):
        pytest.skip(f"layer {name} unavailable here: {info.get('reason', 'unknown')}")
    return info


@pytest.fixture
def make_worker(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("DSAGENT_TOOL_MODULES", "sandbox_tools")
    workers: list[Worker] = []

    def make(**kw) -> Worker:
        artifacts = tmp_path / "session" / "artifacts"
        kw.setdefault("limits", Limits(memory_mb=2048))
        w = Worker(artifacts, log_path=artifacts.parent / "worker.log", **kw)
        workers.append(w)
        return w

    yield make
    for w in workers:
        w.stop()


def call(worker: Worker, tool: str, args: dict | None = None, timeout: float = 30) -> CallResult:
    artifacts = worker.artifacts_dir
    ctx = {"session_dir": str(artifacts.parent), "artifacts_dir": str(artifacts),
           "data_path": str(DATA)}
    *_, result = worker.call(tool, args or {}, ctx, timeout)
    return result


def test_layers_are_reported_with_reasons():
    found = layers()
    for name in ("bubblewrap", "landlock", "seccomp", "pids-cgroup", "rlimits", "timeout", "clean-env"):
        assert isinstance(found[name]["active"], bool)
        assert found[name]["reason"]


def test_tools_see_the_layers_that_took_effect(make_worker):
    w = make_worker()
    result = call(w, "t_echo")
    assert result.ok
    seen = result.output["summary"]["layers"]
    assert seen == w.layers
    assert seen["seccomp"]["active"] == detect.layers()["seccomp"]["active"]


def test_runaway_tool_is_killed_and_session_goes_on(make_worker):
    w = make_worker()
    result = call(w, "t_sleep", {"seconds": 60}, timeout=1.5)
    assert not result.ok and result.kind == "timeout"
    assert result.seconds < 10
    assert call(w, "t_echo", {"text": "again"}).output["summary"]["text"] == "again"


def test_kill_from_another_thread_ends_the_call_and_the_session_goes_on(make_worker):
    """Worker.kill() from another thread (a cancelled MCP task): the running call ends as an error
    result at once, not at its timeout, and the next call starts a fresh worker."""
    w = make_worker()
    assert call(w, "t_echo").ok
    first = w.proc.pid
    killer = threading.Timer(1.0, w.kill)
    killer.start()
    started = time.monotonic()
    result = call(w, "t_sleep", {"seconds": 60}, timeout=20)
    killer.join()
    assert not result.ok and result.kind != "timeout"
    assert time.monotonic() - started < 10
    assert call(w, "t_echo", {"text": "again"}).output["summary"]["text"] == "again"
    assert w.proc.pid != first


def test_memory_hog_is_stopped_and_session_goes_on(make_worker):
    w = make_worker(limits=Limits(memory_mb=1024))
    result = call(w, "t_hog", {"gigabytes": 4})
    assert not result.ok and result.kind == "memory"
    assert call(w, "t_echo").ok


def test_crash_becomes_an_error_and_the_worker_restarts(make_worker):
    w = make_worker()
    assert call(w, "t_echo").ok
    first = w.proc.pid
    result = call(w, "t_crash")
    assert not result.ok and result.kind == "crash" and "SIGSEGV" in result.error
    assert call(w, "t_echo").ok
    assert w.proc.pid != first


def test_secrets_are_absent_from_the_worker(make_worker, monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY",
                 "DB_PASSWORD", "SSH_AUTH_SOCK"):
        monkeypatch.setenv(name, "do-not-leak")
    w = make_worker()
    env = call(w, "t_env").output["summary"]
    assert "do-not-leak" not in str(env)
    assert env["DSAGENT_KERNEL_TRANSPORT"] == "ipc"


def test_reply_and_log_are_capped(make_worker):
    w = make_worker(limits=Limits(memory_mb=2048, reply_bytes=1024 * 1024, log_bytes=64 * 1024))
    result = call(w, "t_big", {"megabytes": 3})
    assert not result.ok and "returned more than" in result.error
    assert call(w, "t_spam", {"megabytes": 4}).ok
    w.stop()
    log = w.log_path.read_bytes()
    assert len(log) < 80 * 1024 and b"[worker log truncated]" in log


def test_filesystem_view(make_worker, tmp_path):
    if not (detect.layers()["bubblewrap"]["active"] or detect.layers()["landlock"]["active"]):
        pytest.skip("layers bubblewrap and landlock unavailable here (no filesystem confinement): "
                    + detect.layers()["bubblewrap"]["reason"])
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("secret")
    w = make_worker(data_paths=[DATA])
    artifacts = w.artifacts_dir
    read = ["/etc/passwd", str(secret), str(DATA)] + ([str(ROOT / ".git" / "HEAD")] if (ROOT / ".git").exists() else [])
    write = [str(artifacts / "ok.txt"), str(artifacts.parent / "session.json"), str(tmp_path / "outside" / "x.txt")]
    seen = call(w, "t_probe", {"read": read, "write": write}).output["summary"]
    assert seen[str(DATA)].startswith("read")
    assert seen[str(artifacts / "ok.txt")] == "wrote"
    for path in read[:2] + read[3:] + write[1:]:
        assert not seen[path].startswith(("read", "wrote")), path
    assert secret.read_text() == "secret" and not (tmp_path / "outside" / "x.txt").exists()


def test_filesystem_view_with_landlock_alone(make_worker, tmp_path, monkeypatch):
    need("landlock")
    monkeypatch.setenv("DSAGENT_DISABLE_LAYERS", "bubblewrap")
    test_filesystem_view(make_worker, tmp_path)
    assert make_worker().layers["bubblewrap"]["active"] is False


@pytest.mark.parametrize("off", ["", "bubblewrap"], ids=["all-layers", "without-bubblewrap"])
def test_libraries_and_jupyter_work_under_the_layers(make_worker, monkeypatch, off):
    """scikit-learn with loky workers, optuna on SQLite in artifacts, matplotlib, and a Jupyter
    kernel over IPC (what the notebook tool needs), under each set of layers users get."""
    monkeypatch.setenv("DSAGENT_DISABLE_LAYERS", off)
    # Each mode with every layer it names, or skipped naming the missing one (never fewer layers).
    for name in ["landlock", "seccomp", "capabilities"] + ([] if off else ["bubblewrap"]):
        need(name)
    w = make_worker(limits=Limits(memory_mb=4096))
    result = call(w, "t_sklearn", timeout=120)
    assert result.ok, result.error
    assert (w.artifacts_dir / "study.db").exists() and (w.artifacts_dir / "fig.png").exists()
    result = call(w, "t_notebook", timeout=120)
    assert result.ok, result.error
    assert result.output["summary"] == {"stdout": "42\n", "transport": "ipc"}


def test_stop_leaves_nothing_behind(make_worker):
    w = make_worker()
    assert call(w, "t_echo").ok
    pid, plan = w.proc.pid, w._plan
    cgroup = plan.cgroup.path if plan.cgroup else None
    w.stop()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    if cgroup is not None:
        assert not cgroup.exists()


def test_seccomp_filter_assembles_with_forward_jumps():
    for arch in seccomp._ARCH:
        code = seccomp._assemble(seccomp.seccomp_program(arch, ["setsid"]))
        assert all(0 <= jt < 256 and 0 <= jf < 256 for _, jt, jf, _ in code)


# ------------------------------------------------- another process's environment (/proc)

DRIVER = """
import json, os, sys
import json
import os
import subprocess
import sys
from pathlib import Path
from dsagent.sandbox import Limits, Worker

secret, session = os.environ["ANTHROPIC_API_KEY"], Path(sys.argv[1])
w = Worker(session / "artifacts", Limits(memory_mb=2048), log_path=session / "worker.log")
ctx = {"session_dir": str(session), "artifacts_dir": str(session / "artifacts")}
code = f"import json\\nfrom sandbox_tools import proc_probe\\nprint(json.dumps(proc_probe({os.getpid()}, {secret!r})))"
try:
    out = {}
    *_, r = w.call("t_proc", {"pid": os.getpid(), "secret": secret}, ctx, 60)
    out["tool"] = r.output["summary"] if r.ok else r.error
    *_, r = w.call("run_python", {"code": code}, ctx, 60)
    out["run_python"] = json.loads(r.output["summary"]["output"]) if r.ok else r.error
    print(json.dumps(out))
finally:
    w.stop()
"""

# Each layer that keeps the dsagent process's environment away from hostile code, alone (the
# others switched off): bubblewrap hides the process (PID namespace); without capabilities a
# root parent is out of reach (ptrace access needs CAP_SYS_PTRACE). Landlock alone is NOT such a
# layer here: a worker that keeps its capabilities read the parent's environ under Landlock ABI 7
# (docs/security.md says so).
ALONE = {"bubblewrap": "landlock,capabilities,seccomp", "capabilities": "bubblewrap,landlock"}


@pytest.mark.parametrize("layer", list(ALONE))
def test_parent_environment_is_unreadable_through_proc(tmp_path, monkeypatch, layer):
    """An ANTHROPIC_API_KEY in the dsagent process: hostile code in a tool worker and in run_python
    reads neither /proc/<dsagent pid>/environ nor the key in any process's environ or cmdline."""
    monkeypatch.setenv("DSAGENT_DISABLE_LAYERS", ALONE[layer])
    need(layer)
    if layer == "capabilities" and os.geteuid() != 0:
        pytest.skip("layer capabilities guards a root parent only; not running as root here")
    secret = "sk-ant-test-" + os.urandom(6).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSAGENT_")}
    env.update(ANTHROPIC_API_KEY=secret, PYTHONPATH=str(TESTS), DSAGENT_DISABLE_LAYERS=ALONE[layer],
               DSAGENT_TOOL_MODULES="sandbox_tools,dsagent.tools.run_python",
               # the layer alone is not enough for run_python's rule; the probe needs it to run anyway
               DSAGENT_ALLOW_UNSANDBOXED="1")
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path / "session")], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    for where in ("tool", "run_python"):
        assert isinstance(seen[where], dict), seen[where]
        assert seen[where]["environ"] != "read", (where, seen[where])
        assert seen[where]["leaks"] == [], (where, seen[where])


def test_stop_kills_run_python_children_without_a_cgroup(make_worker, monkeypatch, ctrl_c_delivered):
    """No bubblewrap and no pids cgroup (a container without either): run_python's child has its
    own process group, yet stopping the worker (a Ctrl-C in chat) must not leave it running."""
    need("landlock")
    monkeypatch.setenv("DSAGENT_DISABLE_LAYERS", "bubblewrap,pids-cgroup")
    monkeypatch.setenv("DSAGENT_TOOL_MODULES", "sandbox_tools,dsagent.tools.run_python")
    w = make_worker()
    ctx = {"session_dir": str(w.artifacts_dir.parent), "artifacts_dir": str(w.artifacts_dir)}
    found: list[int] = []

    def ctrl_c_once_the_child_runs() -> None:
        deadline = time.monotonic() + 30
        while not found and time.monotonic() < deadline:
            time.sleep(0.1)
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    if b"--child" in Path(f"/proc/{pid}/cmdline").read_bytes() and w.proc and \
                            int(Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[1]) == w.proc.pid:
                        found.append(int(pid))
                except (OSError, ValueError, IndexError):
                    pass
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does to the chat

    threading.Thread(target=ctrl_c_once_the_child_runs, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        list(w.call("run_python", {"code": "import time\ntime.sleep(60)"}, ctx, 90))
    assert found, "run_python's child never started"
    child = found[0]
    time.sleep(0.3)
    try:
        state = Path(f"/proc/{child}/stat").read_text().split(") ")[1][0]
    except OSError:
        state = "gone"
    assert state in ("gone", "Z"), "run_python's child outlived its worker"
