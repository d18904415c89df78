"""What one worker may see and do (a Plan): the clean environment, the read-only and writable
paths, rlimits, the pids cgroup; and the Limits a session sets. Computed in the parent, applied
by bubblewrap, the launcher and the worker itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsagent.sandbox import confine
from dsagent.sandbox.cgroup import PidsCgroup
from dsagent.sandbox.layer import disabled
from dsagent.sandbox.mounts import DEV_FILES, PROJECT_ROOT, bwrap_argv, launcher_argv, read_paths


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
    tcp_ports: tuple[int, ...] = ()  # with tcp: Landlock lets it connect to these ports only (sandbox/net_rules.py)


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
    cgroup: PidsCgroup | None = None
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
            "DSAGENT_CONFINE_PREFIX": json.dumps([sys.executable, "-S", confine.__file__]),
        }
        env = clean_environment(extra=extra)
        pythonpath = [Path(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != PROJECT_ROOT]
        read = read_paths(session_dir, list(data_paths), [Path(r) for r in roots], pythonpath)
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
                cgroup = PidsCgroup.create(max_pids)
            except OSError:
                cgroup = None
        return cls(session_dir, str(artifacts_dir), [str(p) for p in read], write, env, rlimits, use_bwrap,
                   host_tmp, cgroup, limits.tcp, tuple(limits.tcp_ports))

    def in_process_spec(self) -> dict[str, Any]:
        shm = ["/dev/shm"] if os.path.isdir("/dev/shm") else []  # joblib/loky semaphores and memmaps
        tmp = ["/tmp"] if self.use_bwrap else []
        off = disabled()
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
                "rw_files": [p for p in DEV_FILES if os.path.exists(p)],
                "list_only": [str(PROJECT_ROOT)]},
        }

    def command(self, inner: list[str], layers: dict[str, Any] | None = None) -> tuple[list[str], dict[str, str]]:
        env = dict(self.env, DSAGENT_SANDBOX=json.dumps(self.in_process_spec()))
        if layers is not None:
            env["DSAGENT_LAYERS"] = json.dumps(layers)
        spec = {"rlimits": self.rlimits, "cgroup": str(self.cgroup.path) if self.cgroup else None}
        argv = list(inner)
        if self.use_bwrap:
            bwrap = bwrap_argv({"read": self.read, "write": self.write, "cwd": self.cwd, "tcp": self.tcp}, env)
            argv = [shutil.which("bwrap") or "/usr/bin/bwrap"] + bwrap[1:] + argv
        return launcher_argv(spec) + argv, env

    def cleanup(self) -> None:
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self.host_tmp:
            shutil.rmtree(self.host_tmp, ignore_errors=True)
            self.host_tmp = None
