"""Each claim of docs/security.md, proven by its layer ALONE (every other switchable layer off).

A hostile action is a few lines of code, run as tool code in the worker (t_exec in
tests/sandbox_tools.py) or as run_python code in its confined child. The first test runs every
action with no switchable layer at all and sees each one SUCCEED: so when a layer test sees the
action fail, that layer is what stopped it, not a broken probe. A layer this machine lacks makes
its tests SKIP with a reason naming the layer (pytest -ra lists them at the end of .ci/run).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from dsagent.sandbox import Limits, Worker
from test_sandbox import need

TESTS = Path(__file__).resolve().parent
SWITCHABLE = ["bubblewrap", "landlock", "seccomp", "capabilities", "pids-cgroup"]

PRELUDE = """
import ctypes, errno, json, os, socket
out = {}
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, action):
    try:
        action()
        out[name] = "done"
    except OSError as exc:
        out[name] = errno.errorcode.get(exc.errno, type(exc).__name__)
def check(rc):  # a libc call's failure, raised as Python would
    if rc != 0:
        raise OSError(ctypes.get_errno(), "")
def in_grandchild(action):  # run_python's child leads its process group: setsid needs a fork
    pid = os.fork()
    if pid == 0:
        try:
            action()
            os._exit(0)
        except OSError as exc:
            os._exit(exc.errno or 1)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code:
        raise OSError(code, "")
"""

# Bodies of the hostile actions; {placeholders} are filled from the test's `where` dict.
ACTIONS = {
    "tcp_to_host_loopback": 'socket.create_connection(("127.0.0.1", {port}), timeout=2).close()',
    "tcp_to_allowed_port": 'socket.create_connection(("127.0.0.1", {allowed_port}), timeout=2).close()',
    "see_parent": 'os.stat("/proc/{parent}")',
    "signal_parent": "os.kill({parent}, 0)",
    "read_outside": "open({outside!r}).read()",
    "write_outside": 'open({outside_new!r}, "w").write("pwned")',
    "write_session_dir": 'open({session_file!r}, "w").write("pwned")',
    "socket_unix": "socket.socket(socket.AF_UNIX).close()",
    "socket_inet": "socket.socket(socket.AF_INET).close()",
    "unshare": "check(libc.unshare(0x10000000))",  # CLONE_NEWUSER: needs no privilege
    "setsid": "in_grandchild(os.setsid)",
    "file_over_1mb": 'open("big.bin", "wb").write(bytes(2 * 2**20))',
    "open_200_files": '[open("/dev/null") for _ in range(200)]',
    "environ": 'out["env"] = dict(os.environ)',
    "raw_socket": "socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()",
    "read_mode_000": "open({mode_000!r}).read()",  # root reads it only with CAP_DAC_OVERRIDE
}
TOOL_ACTIONS = ["tcp_to_host_loopback", "see_parent", "signal_parent", "read_outside", "write_outside",
                "write_session_dir", "file_over_1mb", "open_200_files"]
ROOT_ACTIONS = ["raw_socket", "read_mode_000"]  # powers only root has: what dropping capabilities removes
CHILD_ACTIONS = ["socket_unix", "socket_inet", "unshare", "setsid"]  # run_python's own filter


def program(names: list[str], where: dict) -> str:
    code = PRELUDE
    for i, name in enumerate(names):
        code += f"def action_{i}():\n    {ACTIONS[name].format(**where)}\nattempt({name!r}, action_{i})\n"
    return code


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """hostile(only, names, via="tool"|"run_python", limits=None) -> {action: "done" | errno name},
    run in a fresh worker where `only` is the one switchable layer left on (None: none)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (outside / "mode-000.txt").write_text("secret")
    (outside / "mode-000.txt").chmod(0)
    session = tmp_path / "session"
    where = {"port": listener.getsockname()[1], "parent": os.getpid(), "outside": str(outside / "secret.txt"),
             "outside_new": str(outside / "new.txt"), "session_file": str(session / "pwned.txt"),
             "mode_000": str(outside / "mode-000.txt")}
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv("DSAGENT_TOOL_MODULES", "sandbox_tools,dsagent.tools.run_python")
    monkeypatch.setenv("DSAGENT_ALLOW_UNSANDBOXED", "1")  # one layer alone does not satisfy run_python's rule
    workers: list[Worker] = []

    def run(only: str | None, names: list[str], via: str = "tool", limits: Limits | None = None) -> dict:
        monkeypatch.setenv("DSAGENT_DISABLE_LAYERS", ",".join(x for x in SWITCHABLE if x != only))
        w = Worker(session / "artifacts", limits or Limits(memory_mb=2048), log_path=session / "worker.log")
        workers.append(w)
        ctx = {"session_dir": str(session), "artifacts_dir": str(session / "artifacts")}
        code = program(names, where)
        if via == "tool":
            *_, r = w.call("t_exec", {"code": code}, ctx, 60)
            assert r.ok, r.error
            seen = r.output["summary"]
        else:
            *_, r = w.call("run_python", {"code": code + "print(json.dumps(out))"}, ctx, 60)
            assert r.ok, r.error
            seen = json.loads(r.output["summary"]["output"].strip().splitlines()[-1])
        if only is not None:  # the layer under test really was the only one on
            on = [name for name in SWITCHABLE if w.layers[name]["active"]]
            assert on == [only], on
        return seen

    run.where, run.listener = where, listener
    yield run
    for w in workers:
        w.stop()
    listener.close()


def accepted(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def test_hostile_actions_succeed_with_every_layer_off(hostile):
    """The control: without the layers each action works, so a layer
    test below that sees it fail proves its layer blocks it."""
    root = ROOT_ACTIONS if os.geteuid() == 0 else []
    seen = hostile(None, TOOL_ACTIONS + root)
    seen.update(hostile(None, CHILD_ACTIONS, via="run_python"))
    assert seen == {name: "done" for name in TOOL_ACTIONS + root + CHILD_ACTIONS}
    assert accepted(hostile.listener)
    assert Path(hostile.where["outside_new"]).exists()


# ---------------------------------------------------------------- bubblewrap


def test_bubblewrap_alone_has_no_network(hostile):
    need("bubblewrap")
    assert hostile("bubblewrap", ["tcp_to_host_loopback"]) == {"tcp_to_host_loopback": "ECONNREFUSED"}
    assert not accepted(hostile.listener)  # its loopback is a private one


def test_bubblewrap_alone_hides_host_processes(hostile):
    need("bubblewrap")
    assert hostile("bubblewrap", ["see_parent", "signal_parent"]) == {"see_parent": "ENOENT", "signal_parent": "ESRCH"}


# ---------------------------------------------------------------- Landlock


def test_landlock_alone_denies_files_outside_the_allowed_paths(hostile):
    need("landlock")
    seen = hostile("landlock", ["read_outside", "write_outside", "write_session_dir"])
    assert seen == {"read_outside": "EACCES", "write_outside": "EACCES", "write_session_dir": "EACCES"}
    assert not Path(hostile.where["outside_new"]).exists()


def test_landlock_alone_denies_tcp(hostile):
    info = need("landlock")
    if "TCP bind/connect denied" not in info["reason"]:
        pytest.skip(f"layer landlock has no TCP rules here (needs ABI >= 4): {info['reason']}")
    assert hostile("landlock", ["tcp_to_host_loopback"]) == {"tcp_to_host_loopback": "EACCES"}
    assert not accepted(hostile.listener)


def test_landlock_alone_limits_a_cluster_worker_to_the_cluster_ports(hostile):
    """With --cluster the worker may open TCP, but only to the ports it was given (the scheduler's,
    the workers', the database's): another port on the same host is refused."""
    info = need("landlock")
    if "TCP bind/connect denied" not in info["reason"]:
        pytest.skip(f"layer landlock has no TCP rules here (needs ABI >= 4): {info['reason']}")
    allowed = socket.socket()
    allowed.bind(("127.0.0.1", 0))
    allowed.listen(4)
    allowed.setblocking(False)
    hostile.where["allowed_port"] = port = allowed.getsockname()[1]
    try:
        seen = hostile("landlock", ["tcp_to_allowed_port", "tcp_to_host_loopback"],
                       limits=Limits(memory_mb=2048, tcp=True, tcp_ports=(port,)))
        assert seen == {"tcp_to_allowed_port": "done", "tcp_to_host_loopback": "EACCES"}
        assert accepted(allowed) and not accepted(hostile.listener)
    finally:
        allowed.close()


def test_landlock_alone_scopes_signals(hostile):
    info = need("landlock")
    if "signals and abstract sockets scoped" not in info["reason"]:
        pytest.skip(f"layer landlock does not scope signals here (needs ABI >= 6): {info['reason']}")
    assert hostile("landlock", ["signal_parent"]) == {"signal_parent": "EPERM"}


# ---------------------------------------------------------------- seccomp


def test_seccomp_alone_confines_run_python_child(hostile):
    """run_python's child may create no socket at all (not even AF_UNIX: docker.sock without
    bubblewrap), no namespace, no new session."""
    need("seccomp")
    seen = hostile("seccomp", CHILD_ACTIONS, via="run_python")
    assert seen == {name: "EPERM" for name in CHILD_ACTIONS}


# ---------------------------------------------------------------- capabilities


def test_capabilities_alone_take_root_powers_away(hostile):
    need("capabilities")
    if os.geteuid() != 0:
        pytest.skip("layer capabilities removes root's powers only; not running as root here")
    assert hostile("capabilities", ROOT_ACTIONS) == {"raw_socket": "EPERM", "read_mode_000": "EACCES"}


# ---------------------------------------------------------------- rlimits and the environment


def test_rlimits_alone_bound_file_size_and_open_files(hostile):
    """rlimits are always on; here with every other layer off and limits small enough to hit."""
    seen = hostile(None, ["file_over_1mb", "open_200_files"], limits=Limits(memory_mb=2048, file_mb=1, open_files=64))
    assert seen == {"file_over_1mb": "EFBIG", "open_200_files": "EMFILE"}


def test_clean_environment_alone(tmp_path, monkeypatch, hostile):
    """No secret-named variable and no pointer to a host socket reaches the worker; HOME is
    private to the session. The control variable shows the environment does pass through."""
    planted = {"DOCKER_HOST": "unix:///var/run/docker.sock", "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
               "ANTHROPIC_API_KEY": "sk-ant-x", "MY_SERVICE_TOKEN": "t", "DB_PASSWORD": "p",
               "AWS_ACCESS_KEY_ID": "a", "STRIPE_SECRET": "s", "GCP_CREDENTIALS": "c"}
    for name, value in planted.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DS_TEST_HARMLESS", "visible")
    monkeypatch.setenv("HOME", str(tmp_path / "real-home"))
    seen = hostile(None, ["environ"])["env"]
    assert seen["DS_TEST_HARMLESS"] == "visible"
    assert not set(planted) & set(seen), set(planted) & set(seen)
    assert seen["HOME"] == str(tmp_path / "session" / ".cache" / "home")


def test_ci_summary_line_names_each_missing_layer_with_its_reason():
    """.ci/run ends with this line, so a layer missing in CI is visible in its output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DSAGENT_")}
    env["DSAGENT_DISABLE_LAYERS"] = "bubblewrap,pids-cgroup"
    proc = subprocess.run([sys.executable, "-m", "dsagent.sandbox", "--summary"], env=env, cwd=TESTS.parent,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    [line] = proc.stdout.strip().splitlines()
    on, off = line.split("; OFF: ")
    assert off == "bubblewrap (disabled by DSAGENT_DISABLE_LAYERS); pids-cgroup (disabled by DSAGENT_DISABLE_LAYERS)"
    assert on.startswith("sandbox layers: on: ") and "rlimits" in on and "bubblewrap" not in on
