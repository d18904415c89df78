"""run_python: analysis code works; hostile code is blocked by a named layer; the session goes on.

Each hostile test runs in two modes: with every layer (bubblewrap, Landlock, seccomp, dropped
capabilities), and with Landlock + seccomp alone (bubblewrap switched off), since that is what
users without bubblewrap get. A mode missing one of its layers here is skipped, naming it. After every hostile call the
same worker (same pid: it was not restarted) must still run code.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from dsagent.sandbox import detect
from dsagent.sandbox import CallResult, Limits, Worker
from dsagent.tools.registry import ToolContext, ToolError, ToolOutput
from dsagent.tools.run_python import run_python

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DATA = ROOT / "examples" / "penguins.csv"
MODES = {"all-layers": "", "landlock+seccomp": "bubblewrap"}
# The layers each mode is about (the pids cgroup is optional; the fork bomb test skips without it).
REQUIRED = {"all-layers": ["bubblewrap", "landlock", "seccomp", "capabilities"], "landlock+seccomp": ["landlock", "seccomp"]}


@pytest.fixture(scope="module", params=list(MODES))
def box(request, tmp_path_factory):
    """A session with a worker that can run run_python, in one isolation mode."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DSAGENT_TOOL_MODULES", "dsagent.tools.run_python")
        mp.setenv("DSAGENT_DISABLE_LAYERS", MODES[request.param])
        mp.delenv("DSAGENT_ALLOW_UNSANDBOXED", raising=False)
        found = detect.layers()
        # A mode runs with every layer it names or not at all: "all-layers" with bubblewrap
        # missing would pass on fewer layers and hide the gap, so it skips, naming the layer.
        for name in REQUIRED[request.param]:
            if not found[name]["active"]:
                pytest.skip(f"layer {name} unavailable here ({request.param} mode): {found[name]['reason']}")
        base = tmp_path_factory.mktemp(request.param)
        session = base / "session"
        (session / "artifacts").mkdir(parents=True)
        (session / "session.json").write_text('{"ok": true}')
        outside = base / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_text("secret")
        worker = Worker(session / "artifacts", Limits(memory_mb=4096), log_path=session / "worker.log",
                        data_paths=[DATA])
        box = {"mode": request.param, "worker": worker, "session": session, "outside": outside}
        assert run(box, "print(6 * 7)").output["summary"]["output"] == "42\n"
        box["pid"] = worker.proc.pid
        yield box
        worker.stop()


def run(box: dict, code: str, timeout_s: float = 20) -> CallResult:
    session = box["session"]
    ctx = {"session_dir": str(session), "artifacts_dir": str(session / "artifacts"), "data_path": str(DATA)}
    *_, result = box["worker"].call("run_python", {"code": code, "timeout_s": timeout_s}, ctx, timeout_s + 30)
    return result


def still_usable(box: dict) -> None:
    result = run(box, "print('still here')")
    assert result.ok and result.output["summary"]["output"] == "still here\n"
    assert box["worker"].proc.pid == box["pid"], "the worker was restarted: hostile code reached it"
    assert (box["session"] / "session.json").read_text() == '{"ok": true}'


def probe_results(result: CallResult) -> dict:
    assert result.ok, result.error
    return json.loads(result.output["summary"]["output"].strip().splitlines()[-1])


TRY = """
import json
res = {}
for p, mode in %r:
    try:
        with open(p, mode) as f:
            f.read() if mode == "r" else f.write("pwned")
        res[p] = "done"
    except OSError as e:
        res[p] = type(e).__name__
print(json.dumps(res))
"""


def test_analysis_with_data_figure_and_last_expression(box):
    code = "print(df.shape)\nplt.plot(df['bill_length_mm'])\ndf['species'].nunique()"
    result = run(box, code)
    assert result.ok, result.error
    summary = result.output["summary"]
    assert summary["output"] == "(344, 8)\n3\n"
    assert summary["figures"] and (box["session"] / "artifacts" / summary["figures"][0]).stat().st_size > 1000
    assert (box["session"] / "artifacts" / result.output["files"]["code"]).read_text() == code


def test_output_is_truncated_to_a_budget(box):
    result = run(box, "print('y' * 50_000)")
    assert result.ok
    out = result.output["summary"]["output"]
    assert len(out) < 7000 and "characters omitted" in out


def test_errors_come_back_with_the_traceback(box):
    result = run(box, "x = 1\nundefined_name + x")
    assert not result.ok and "NameError" in result.error and "<run_python>" in result.error


def test_reading_outside_the_session_is_blocked(box):
    paths = ["/etc/passwd", str(box["outside"] / "secret.txt"), str(Path.home() / ".bashrc")]
    if (ROOT / ".git" / "HEAD").exists():
        paths.append(str(ROOT / ".git" / "HEAD"))
    res = probe_results(run(box, TRY % [(p, "r") for p in paths]))
    bwrap = box["worker"].layers["bubblewrap"]["active"]
    for p in paths:
        if os.path.exists(p):
            # bubblewrap: the path is not in the sandbox at all; Landlock: it is there, denied.
            assert res[p] == ("FileNotFoundError" if bwrap else "PermissionError"), (p, res[p])
    still_usable(box)


def test_writing_outside_the_session_is_blocked(box):
    targets = [str(box["session"] / "session.json"), str(box["outside"] / "new.txt"),
               str(box["outside"] / "secret.txt"), str(box["session"] / "artifacts" / "allowed.txt")]
    res = probe_results(run(box, TRY % [(p, "w") for p in targets]))
    assert res[targets[3]] == "done"  # the artifacts directory is the one place to write
    for p in targets[:3]:
        assert res[p] in ("PermissionError", "OSError", "FileNotFoundError"), (p, res[p])
    assert not (box["outside"] / "new.txt").exists()
    assert (box["outside"] / "secret.txt").read_text() == "secret"
    still_usable(box)


def test_network_is_blocked(box):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    code = f"""
import json, socket
res = {{}}
for name, fn in [
    ("tcp", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=2)),
    ("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("1.1.1.1", 53))),
    ("tcp6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM)),
    ("raw", lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)),
    ("unix", lambda: socket.socket(socket.AF_UNIX).connect("/var/run/docker.sock")),
    ("pair", lambda: socket.socketpair()),
]:
    try:
        fn()
        res[name] = "done"
    except OSError as e:
        res[name] = type(e).__name__
print(json.dumps(res))
"""
    try:
        res = probe_results(run(box, code))
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing reached the host's loopback
    finally:
        listener.close()
    # seccomp: run_python's code may create no socket at all (a unix socket path like
    # docker.sock would be reachable without bubblewrap); socketpair stays for multiprocessing.
    assert res == {"tcp": "PermissionError", "udp": "PermissionError", "tcp6": "PermissionError",
                   "raw": "PermissionError", "unix": "PermissionError", "pair": "done"}
    still_usable(box)


def test_allocating_10_gb_is_stopped_by_rlimit_as(box):
    result = run(box, "x = bytearray(10 * 2**30)")
    assert not result.ok and "MemoryError" in result.error
    still_usable(box)


def test_busy_loop_is_stopped_by_the_timeout(box):
    started = time.monotonic()
    result = run(box, "while True:\n    pass", timeout_s=1.5)
    assert not result.ok and "wall-clock timeout" in result.error
    assert time.monotonic() - started < 10
    still_usable(box)


def test_printing_1_gb_is_cut_off(box):
    started = time.monotonic()
    result = run(box, "for _ in range(1000):\n    print('x' * 2**20)")  # 1 GiB in 1 MiB lines
    assert not result.ok and "printing more than" in result.error
    assert len(result.error) < 8000 and time.monotonic() - started < 10
    still_usable(box)


def test_fork_bomb_is_contained(box):
    layers = box["worker"].layers
    # Only with a proven bound on the process count: RLIMIT_NPROC does nothing for root.
    if not layers["pids-cgroup"]["active"]:
        pytest.skip("layer pids-cgroup unavailable here, a fork bomb would not be bounded: "
                    + layers["pids-cgroup"]["reason"])
    if not layers["seccomp"]["active"]:
        pytest.skip("layer seccomp unavailable here: forked processes could leave the process group")
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run(box, code, timeout_s=2)
    assert not result.ok and "wall-clock timeout" in result.error
    cgroup = box["worker"]._plan.cgroup
    assert len(cgroup.pids()) <= 3, "fork bomb processes survived"
    still_usable(box)


def test_background_processes_do_not_outlive_the_call(box):
    marker = f"{300 + os.getpid() % 1000}.{time.time_ns() % 10**6}"  # a unique sleep argument
    assert run(box, f"import subprocess\nsubprocess.Popen(['sleep', '{marker}'])\nprint('started')").ok
    time.sleep(0.2)
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):  # seen from the host, outside any namespace
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_text():
                left.append(pid)
        except OSError:
            pass
    assert not left, "a background process outlived its run_python call"


# ---------------------------------------------------------------- the refusal rule


def invoke_here(tmp_path, code: str) -> ToolOutput:
    """Call the tool in this process, with the layers detected under the current environment."""
    ctx = ToolContext(session_dir=tmp_path, artifacts_dir=tmp_path / "artifacts",
                      sandbox={"layers": detect.layers()})
    return run_python.tool_spec.invoke(ctx, {"code": code, "timeout_s": 20})


@pytest.mark.parametrize("off, missing", [("bubblewrap,landlock", "filesystem confinement"),
                                          ("bubblewrap,seccomp", "network confinement"),
                                          ("bubblewrap,landlock,seccomp", "filesystem confinement (bubblewrap "
                                           "or Landlock) and network confinement")])
def test_refuses_without_confinement_naming_the_missing_piece(tmp_path, monkeypatch, off, missing):
    monkeypatch.setenv("DSAGENT_DISABLE_LAYERS", off)
    monkeypatch.delenv("DSAGENT_ALLOW_UNSANDBOXED", raising=False)
    with pytest.raises(ToolError) as err:
        invoke_here(tmp_path, "print('should not run')")
    assert missing in str(err.value) and "--allow-unsandboxed" in str(err.value)
    assert not (tmp_path / "artifacts" / "python").exists()


def test_refuses_when_the_layers_are_unknown(tmp_path, monkeypatch):
    monkeypatch.delenv("DSAGENT_ALLOW_UNSANDBOXED", raising=False)
    ctx = ToolContext(session_dir=tmp_path, artifacts_dir=tmp_path / "artifacts")  # no sandbox info
    with pytest.raises(ToolError, match="refuses"):
        run_python.tool_spec.invoke(ctx, {"code": "print(1)"})


def test_allow_unsandboxed_is_an_explicit_override(tmp_path, monkeypatch):
    monkeypatch.setenv("DSAGENT_DISABLE_LAYERS", "bubblewrap,landlock,seccomp")
    monkeypatch.setenv("DSAGENT_ALLOW_UNSANDBOXED", "1")
    assert invoke_here(tmp_path, "1 + 1").summary["output"] == "2\n"
