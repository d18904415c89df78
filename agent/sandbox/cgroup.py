"""A pids cgroup (v1 or v2) around one worker: a fork bomb runs out of pids."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path


class PidsCgroup:
    """A pids cgroup (v1 or v2) around one worker: bounds its process count; kills it whole."""

    _counter = 0
    _lock = threading.Lock()

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, max_pids: int) -> "PidsCgroup":
        """Raises OSError with a reason when this machine does not let us."""
        with cls._lock:
            cls._counter += 1
            name = f"dsagent-{os.getpid()}-{cls._counter}"
        base = cls._base()
        cls._collect_stale(base)
        path = base / name
        path.mkdir()
        try:
            (path / "pids.max").write_text(str(max_pids))
        except OSError:
            path.rmdir()
            raise
        return cls(path)

    @staticmethod
    def _collect_stale(base: Path) -> None:
        # A dsagent process killed without stopping its workers leaves an empty cgroup behind.
        for path in base.glob("dsagent-*-*"):
            try:
                owner = int(path.name.split("-")[1])
                if not os.path.exists(f"/proc/{owner}") and not (path / "cgroup.procs").read_text().strip():
                    path.rmdir()
            except (ValueError, OSError):
                pass

    @staticmethod
    def _base() -> Path:
        v1 = Path("/sys/fs/cgroup/pids")
        if (v1 / "cgroup.procs").exists():
            return v1
        own = ""
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            if line.startswith("0::"):
                own = line[3:].lstrip("/")
        base = Path("/sys/fs/cgroup") / own
        controllers = (base / "cgroup.subtree_control")
        if not controllers.exists():
            raise OSError(errno.ENOENT, "no pids cgroup controller mounted")
        if "pids" not in controllers.read_text().split():
            controllers.write_text("+pids")  # fails (EBUSY/EACCES) unless delegated to us
        return base

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        kill_file = self.path / "cgroup.kill"  # v2: atomic, no race with forking
        if kill_file.exists():
            try:
                kill_file.write_text("1")
            except OSError:
                pass
        for _ in range(50):  # v1: repeat until no one forks fast enough to survive
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
            threading.Event().wait(0.02)

    def remove(self) -> None:
        self.kill()
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                threading.Event().wait(0.02)
