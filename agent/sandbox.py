"""Runs tool calls in a worker process with limits, inside whatever isolation this machine has.

Guarantees (docs/security.md says what they do NOT protect against):
- the worker's environment carries no secrets (no ANTHROPIC_API_KEY, nothing named *_KEY,
  *_TOKEN, *_SECRET, *PASSWORD*) and no pointers to host sockets (SSH agent, D-Bus, Docker);
- rlimits: address space (RLIMIT_AS), CPU backstop, file size, open files, no core dumps;
- a wall-clock timeout per call that kills the worker's process group (and its pids cgroup);
- a cap on what the worker may send back and on its log output;
- cwd inside the session's artifacts directory;
- the layers of dsagent.isolation when available: bubblewrap, Landlock, seccomp, dropped
  capabilities, a pids cgroup. `Worker.layers` (and ctx.sandbox["layers"] in tools) says which
  took effect; `layers()` says what this machine offers, for session.json and `dsagent doctor`.
A crash, a timeout or a MemoryError becomes an error result; the worker is restarted on the
next call and the session goes on.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from dsagent import isolation

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRET_NAME = re.compile(r"(_KEY|_TOKEN|_SECRET|PASSWORD|_CREDENTIALS?)$|^ANTHROPIC_|^AWS_|^OPENAI_", re.I)


@dataclass
class Limits:
    memory_mb: int = int(os.environ.get("DSAGENT_MEMORY_MB", "8192"))
    cpu_seconds: int = 3600  # backstop only; the wall-clock timeout is the real limit
    reply_bytes: int = 4 * 1024 * 1024
    log_bytes: int = 2 * 1024 * 1024
    start_timeout: float = 60.0
    file_mb: int = 4096  # RLIMIT_FSIZE: largest single file a tool may write
    open_files: int = 4096  # RLIMIT_NOFILE
    max_pids: int = 512  # pids.max of the worker's cgroup (processes + threads), when available
    # --cluster: the worker may open TCP connections (to the Dask scheduler and workers), and may
    # write these extra paths (a --tuning-storage journal file's directory). Off by default.
    tcp: bool = False
    extra_write: tuple[str, ...] = ()
    tcp_ports: tuple[int, ...] = ()  # with tcp: Landlock lets it connect to these ports only (dsagent.net_rules)


@dataclass
class CallResult:
    ok: bool
    output: dict[str, Any] | None = None  # ToolOutput.to_json() when ok
    error: str | None = None
    kind: str | None = None  # tool_error | invalid_arguments | timeout | crash | memory | exception | interrupted
    seconds: float = 0.0


@dataclass
class Progress:
    message: str
    fraction: float | None = None


# Variables that point at host services a sandboxed process could talk to over a unix socket.
HOST_SOCKET_VARS = {"SSH_AUTH_SOCK", "GPG_AGENT_INFO", "DBUS_SESSION_BUS_ADDRESS", "DOCKER_HOST",
                    "XDG_RUNTIME_DIR", "DISPLAY", "WAYLAND_DISPLAY", "JPY_PARENT_PID", "KUBECONFIG"}


def clean_environment(base: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in (base if base is not None else os.environ).items()
           if not SECRET_NAME.search(k) and k not in HOST_SOCKET_VARS}
    # dsagent itself is imported from its installation (the wheel, or the editable install's finder
    # in site-packages), never from the current directory: no PYTHONPATH entry for it.
    env["MPLBACKEND"] = "Agg"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # code dirs are read-only in the sandbox
    env.update(extra or {})
    return env


@dataclass
class Plan:
    """What one worker may see and do: computed in the parent, applied by bwrap, the launcher
    (rlimits, cgroup) and the worker itself (Landlock, seccomp)."""

    session_dir: Path
    cwd: str
    read: list[str]
    write: list[str]
    env: dict[str, str]
    rlimits: dict[str, tuple[int, int]]
    use_bwrap: bool
    host_tmp: str | None = None  # private tmp dir on the host when there is no bwrap /tmp
    cgroup: isolation.PidsCgroup | None = None
    tcp: bool = False
    tcp_ports: tuple[int, ...] = ()

    @classmethod
    def build(cls, artifacts_dir: Path, limits: Limits, *, use_bwrap: bool, data_paths: list[Path] = (),
              roots: list[Path] = (), max_pids: int | None = None) -> "Plan":
        artifacts_dir = Path(os.path.abspath(artifacts_dir))
        session_dir = artifacts_dir.parent
        cache = session_dir / ".cache"
        for sub in ("matplotlib", "home", "ipython"):
            (cache / sub).mkdir(parents=True, exist_ok=True)
        # A short tmp path: unix socket paths (Jupyter IPC) must stay under 108 bytes.
        host_tmp = None if use_bwrap else tempfile.mkdtemp(prefix="dsagent-")
        tmp = "/tmp" if use_bwrap else host_tmp
        extra = {
            "HOME": str(cache / "home"), "USER": "dsagent", "LOGNAME": "dsagent",
            "MPLCONFIGDIR": str(cache / "matplotlib"), "IPYTHONDIR": str(cache / "ipython"),
            "TMPDIR": tmp, "JUPYTER_RUNTIME_DIR": f"{tmp}/jupyter",
            # for the notebook tool: no TCP inside the sandbox, so kernels talk over unix sockets
            "DSAGENT_KERNEL_TRANSPORT": "ipc",
            "DSAGENT_CONFINE_PREFIX": json.dumps([sys.executable, "-S", isolation.__file__, "confine"]),
        }
        env = clean_environment(extra=extra)
        pythonpath = [Path(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != PROJECT_ROOT]
        read = isolation.read_paths(session_dir, list(data_paths), [Path(r) for r in roots], pythonpath)
        write = [str(artifacts_dir), str(cache)] + ([host_tmp] if host_tmp else []) + [
            str(Path(p).absolute()) for p in limits.extra_write if os.path.isdir(p)]
        mem = limits.memory_mb * 1024 * 1024
        rlimits = {
            "RLIMIT_AS": (mem, mem), "RLIMIT_CORE": (0, 0),
            "RLIMIT_CPU": (limits.cpu_seconds, limits.cpu_seconds + 10),
            "RLIMIT_FSIZE": (limits.file_mb * 1024 * 1024,) * 2,
            "RLIMIT_NOFILE": (limits.open_files, limits.open_files),
        }
        cgroup = None
        if max_pids:
            try:
                cgroup = isolation.PidsCgroup.create(max_pids)
            except OSError:
                cgroup = None
        return cls(session_dir, str(artifacts_dir), [str(p) for p in read], write, env, rlimits, use_bwrap,
                   host_tmp, cgroup, limits.tcp, tuple(limits.tcp_ports))

    def in_process_spec(self) -> dict[str, Any]:
        shm = ["/dev/shm"] if os.path.isdir("/dev/shm") else []  # joblib/loky semaphores and memmaps
        tmp = ["/tmp"] if self.use_bwrap else []
        off = isolation.disabled()
        return {
            "session_dir": str(self.session_dir),
            "seccomp": "seccomp" not in off,
            "tcp": self.tcp,
            "tcp_ports": list(self.tcp_ports),
            "drop_caps": "capabilities" not in off,
            "landlock": None if "landlock" in off else {
                # /sys/fs/cgroup: loky reads the CPU quota there and fails on EACCES (not ENOENT)
                "read": self.read + [p for p in ("/proc", "/dev", "/sys/fs/cgroup") if os.path.exists(p)],
                "write": self.write + shm + tmp,
                "rw_files": [p for p in isolation.DEV_FILES if os.path.exists(p)],
                "list_only": [str(PROJECT_ROOT)]},
        }

    def command(self, inner: list[str], layers: dict[str, Any] | None = None) -> tuple[list[str], dict[str, str]]:
        env = dict(self.env, DSAGENT_SANDBOX=json.dumps(self.in_process_spec()))
        if layers is not None:
            env["DSAGENT_LAYERS"] = json.dumps(layers)
        spec = {"rlimits": self.rlimits, "cgroup": str(self.cgroup.path) if self.cgroup else None}
        argv = list(inner)
        if self.use_bwrap:
            bwrap = isolation.bwrap_argv({"read": self.read, "write": self.write, "cwd": self.cwd, "tcp": self.tcp}, env)
            argv = [shutil.which("bwrap") or "/usr/bin/bwrap"] + bwrap[1:] + argv
        return isolation.launcher_argv(spec) + argv, env

    def cleanup(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self.host_tmp:
            shutil.rmtree(self.host_tmp, ignore_errors=True)
            self.host_tmp = None


def kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid` (found in /proc), until none is left."""
    for _ in range(50):
        found = []
        for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            state, _ppid, _pgrp, session = stat[stat.rindex(")") + 2:].split()[:4]
            if int(session) == sid and state != "Z":
                found.append(int(entry))
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)


def layers() -> dict[str, dict[str, Any]]:
    """The isolation layers of this machine (for session.json and `dsagent doctor`)."""
    return isolation.layers()


@dataclass
class Worker:
    """One long-lived worker per session, restarted after any crash or timeout.

    data_paths and roots are bound read-only into the sandbox (the session's data file and the
    directories tools may read data from); nothing else outside the session is visible.
    `layers` says which isolation layers protect this worker: detected before the first start,
    then updated with what the worker itself reports.
    """

    artifacts_dir: Path
    limits: Limits = field(default_factory=Limits)
    log_path: Path | None = None
    data_paths: list[Path] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    layers: dict[str, dict[str, Any]] = field(default_factory=dict)
    _plan: Plan | None = None
    _counter: int = 0
    _buf: bytes = b""
    _log_thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.data_paths = [Path(p) for p in self.data_paths if p]
        self.roots = [Path(p) for p in self.roots if p]
        if not self.layers:
            self.layers = isolation.layers()

    def set_paths(self, data_paths: list[Path] | None = None, roots: list[Path] | None = None) -> None:
        """Change what is bound read-only; the worker restarts on its next call if it changed."""
        new_data = [Path(p) for p in (data_paths if data_paths is not None else self.data_paths) if p]
        new_roots = [Path(p) for p in (roots if roots is not None else self.roots) if p]
        if (new_data, new_roots) != (self.data_paths, self.roots):
            self.data_paths, self.roots = new_data, new_roots
            self.stop()

    def start(self) -> None:
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        detected = isolation.layers()
        use_bwrap = detected["bubblewrap"]["active"]
        plan = Plan.build(self.artifacts_dir, self.limits, use_bwrap=use_bwrap, data_paths=self.data_paths,
                          roots=self.roots, max_pids=self.limits.max_pids if detected["pids-cgroup"]["active"] else None)
        self._plan = plan
        layers = dict(detected)
        if detected["pids-cgroup"]["active"] and plan.cgroup is None:
            layers["pids-cgroup"] = isolation.layer(False, "could not create this worker's cgroup", "pids-cgroup")
        elif plan.cgroup is not None:
            layers["pids-cgroup"] = isolation.layer(True, f"pids.max={self.limits.max_pids}", "pids-cgroup")
        layers["rlimits"] = isolation.layer(True, f"AS {self.limits.memory_mb} MB, CPU {self.limits.cpu_seconds} s, "
                                                  f"FSIZE {self.limits.file_mb} MB, NOFILE {self.limits.open_files}, "
                                                  "CORE 0", "rlimits")
        argv, env = plan.command([sys.executable, "-m", "dsagent.worker"], layers)
        self._buf = b""
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.artifacts_dir,
            env=env,
            start_new_session=True,  # own process group: a timeout kills the tool's children too
        )
        self._log_thread = threading.Thread(target=self._drain_log, args=(self.proc,), daemon=True)
        self._log_thread.start()
        try:
            reply = self._read_reply(self.limits.start_timeout)
        except (TimeoutError, OverflowError, ValueError):
            reply = None
        if not reply or reply.get("type") != "ready":
            self.stop()
            raise RuntimeError("the tool worker failed to start; see worker.log in the session directory")
        # The worker reports the layers as they took effect (Landlock and seccomp apply inside it).
        self.layers = reply.get("layers") or layers

    def _drain_log(self, proc: subprocess.Popen) -> None:
        # Keep the first log_bytes of the worker's stderr; discard the rest so a runaway
        # print cannot fill the disk.
        written = 0
        log = open(self.log_path, "ab") if self.log_path else None
        try:
            assert proc.stderr is not None
            for chunk in iter(lambda: proc.stderr.read1(65536), b""):
                if log and written < self.limits.log_bytes:
                    part = chunk[: self.limits.log_bytes - written]
                    log.write(part)
                    log.flush()
                    written += len(part)
                    if written >= self.limits.log_bytes:
                        log.write(b"\n[worker log truncated]\n")
        except (OSError, ValueError):
            pass
        finally:
            if log:
                log.close()

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # bwrap's PID namespace dies with it
            except (ProcessLookupError, PermissionError):
                pass
            if self._plan is not None and self._plan.cgroup is not None:
                self._plan.cgroup.kill()  # anything that left the process group
            else:
                # No cgroup: run_python's child has a process group of its own and, without
                # bubblewrap's PID namespace, would outlive the worker. It cannot leave the
                # worker's session (setsid is denied to it), so the session finds it.
                kill_session(self.proc.pid)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    if stream:
                        stream.close()
                except OSError:
                    pass
            self.proc = None
        if self._plan is not None:
            self._plan.cleanup()
            self._plan = None

    def _read_reply(self, timeout: float) -> dict[str, Any] | None:
        """The next protocol line, or None at EOF. Raises TimeoutError, OverflowError."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buf += chunk
            if len(self._buf) > self.limits.reply_bytes:
                raise OverflowError
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def call(
        self, tool: str, args: dict[str, Any], context: dict[str, Any], timeout: float
    ) -> Iterator[Progress | CallResult]:
        """Yields Progress while the tool runs, then exactly one CallResult."""
        started = time.monotonic()
        # The data the call may read must be bound into the sandbox: a new data path or root
        # (a session that switched datasets) restarts the worker with it.
        data = [Path(context["data_path"])] if context.get("data_path") else []
        roots = [Path(r) for r in context.get("roots") or []]
        if not set(data) <= set(self.data_paths) or not set(roots) <= set(self.roots):
            self.set_paths(self.data_paths + [p for p in data if p not in self.data_paths],
                           self.roots + [r for r in roots if r not in self.roots])
        if not self.alive:
            try:
                self.start()
            except KeyboardInterrupt:  # Ctrl-C while the worker was still importing the tools
                self.stop()
                raise
        assert self.proc is not None and self.proc.stdin is not None
        self._counter += 1
        request = {"id": self._counter, "tool": tool, "args": args, "context": context}
        try:
            self.proc.stdin.write((json.dumps(request, default=str) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.stop()
            yield CallResult(False, error="the tool worker died before the call; it will be restarted", kind="crash")
            return
        deadline = started + timeout
        try:
            for reply in self._replies(deadline):
                if reply.get("type") == "progress":
                    yield Progress(reply.get("message", ""), reply.get("fraction"))
                elif reply.get("type") == "result":
                    yield CallResult(
                        ok=bool(reply.get("ok")),
                        output=reply.get("output"),
                        error=reply.get("error"),
                        kind=reply.get("kind"),
                        seconds=time.monotonic() - started,
                    )
                    return
            code = self.proc.wait(timeout=5) if self.proc else None
            self.stop()
            killed = code in (-signal.SIGKILL, 128 + signal.SIGKILL)
            yield CallResult(False, error=self._describe_exit(code), kind="memory" if killed else "crash",
                             seconds=time.monotonic() - started)
        except TimeoutError:
            self.stop()
            yield CallResult(False, error=f"the tool {tool} timed out after {timeout:.0f}s and was stopped; "
                             "give it a smaller time budget or less data", kind="timeout", seconds=time.monotonic() - started)
        except OverflowError:
            self.stop()
            yield CallResult(False, error=f"the tool {tool} returned more than {self.limits.reply_bytes} bytes; output discarded",
                             kind="crash", seconds=time.monotonic() - started)
        except KeyboardInterrupt:
            self.stop()
            raise

    def _replies(self, deadline: float) -> Iterator[dict[str, Any]]:
        while (reply := self._read_reply(max(0.0, deadline - time.monotonic()))) is not None:
            yield reply

    def _describe_exit(self, code: int | None) -> str:
        if code is not None and code > 128 and self.layers.get("bubblewrap", {}).get("active"):
            code = 128 - code  # bwrap reports a signal death as 128+N
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            hint = " (likely out of memory)" if code in (-signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT) else ""
            return f"the tool worker was killed by {name}{hint}; it will be restarted. Try less data or a smaller model."
        return f"the tool worker exited unexpectedly (code {code}); it will be restarted"
