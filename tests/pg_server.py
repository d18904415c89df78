"""A throwaway PostgreSQL server for the shared-study tests: initdb in a temporary directory, the
server on a free 127.0.0.1 port (no fsync: nothing here needs to survive), stopped and removed after.

PostgreSQL refuses to run as root, so as root the server runs as `nobody` (through runuser) in a
directory owned by it. `.ci/setup` installs Debian's `postgresql`; without it `start()` raises
Unavailable with the reason, and the tests skip naming it.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class Unavailable(RuntimeError):
    """No PostgreSQL server can be started here (the message says why)."""


def server_bin() -> Path:
    """The directory of initdb/pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if versions:
        return Path(versions[-1]).parent
    raise Unavailable("PostgreSQL server binaries (initdb, pg_ctl) not found: run .ci/setup as root "
                      "(it installs Debian's postgresql) or apt-get install postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres() -> Iterator[str]:
    """Start a server; yield its URL (user postgres, trust auth, database postgres); stop it after."""
    bin_dir = server_bin()
    as_user: list[str] = []
    home = Path(tempfile.mkdtemp(prefix="dsagent-pg-"))
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            raise Unavailable("running as root and runuser is missing: PostgreSQL will not run as root")
        as_user = ["runuser", "-u", "nobody", "--"]
        shutil.chown(home, "nobody")
    data, port = home / "data", free_port()

    def pg(*argv: str, timeout: float = 60) -> None:
        done = subprocess.run([*as_user, *argv], cwd=home, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise Unavailable(f"{Path(argv[0]).name} failed: {(done.stderr or done.stdout).strip()[-400:]}")

    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        # -k: the unix socket in our directory (the default /var/run/postgresql may not be writable);
        # -F: no fsync.
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-w", "-t", "60",
           "-o", f"-p {port} -h 127.0.0.1 -k {home} -F", "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           cwd=home, capture_output=True, timeout=60)
    finally:
        shutil.rmtree(home, ignore_errors=True)
