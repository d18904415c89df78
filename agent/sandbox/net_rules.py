"""Landlock TCP port rules for a tool worker that talks to a cluster (--cluster, a database study).

Such a worker must open TCP connections, so bubblewrap shares the host network and seccomp allows
inet sockets. Where the kernel has Landlock's network rules (ABI >= 4), the worker may still
connect only to the ports it needs, the Dask scheduler's and workers' ports and the tuning
database's port, and may bind none. Landlock rules name ports, not hosts: a connection to
another host on one of those ports is not stopped. Workers that join the cluster after the tool
worker started listen on ports it cannot reach. Without ABI 4 the TCP is not limited and the
layer's note says so (session.json, `dsagent doctor`).

Kept apart from dsagent.isolation (which calls `restrict_tcp` from apply_landlock) so the sandbox
itself changes by a few lines. Standard library only: it runs before anything is imported.
"""

from __future__ import annotations

import ctypes
import re
from typing import Iterable
from urllib.parse import urlsplit

NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
_RULE_NET_PORT = 2
_DEFAULT_DB_PORTS = {"postgresql": 5432, "postgres": 5432, "mysql": 3306, "mariadb": 3306, "mssql": 1433, "oracle": 1521}


class _NetPortAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def address_port(address: str) -> int | None:
    """The port of a tcp://host:port (or host:port) address."""
    m = re.search(r":(\d{1,5})/?$", str(address))
    return int(m.group(1)) if m else None


def storage_port(url: str | None) -> int | None:
    """The TCP port of a database URL (its scheme's default when none is written); None for files."""
    if not url or "://" not in url:
        return None
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme not in _DEFAULT_DB_PORTS:
        return None
    try:
        return parts.port or _DEFAULT_DB_PORTS[scheme]
    except ValueError:
        return None


def allowed_ports(addresses: Iterable[str], storage: str | None = None) -> tuple[int, ...]:
    """The ports of the scheduler and workers (`addresses`) and of the storage, sorted, once each."""
    ports = {address_port(a) for a in addresses} | {storage_port(storage)}
    return tuple(sorted(p for p in ports if p))


def restrict_tcp(libc: ctypes.CDLL, syscall_add: int, ruleset_fd: int, ports: Iterable[int]) -> str:
    """Add one connect rule per port to a ruleset that handles bind and connect (so binding and
    every other port are denied). Returns the note for the layer's reason."""
    ports = sorted(set(int(p) for p in ports))
    for port in ports:
        rule = _NetPortAttr(NET_CONNECT_TCP, port)
        if libc.syscall(syscall_add, ruleset_fd, _RULE_NET_PORT, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for TCP port {port}")
    return "TCP connect only to ports " + ",".join(map(str, ports)) + " (the cluster/database), no bind"


def unconfined_note(abi: int) -> str:
    return (f"TCP allowed to any port (--cluster): Landlock ABI {abi} has no network rules (needs >= 4)"
            if abi < 4 else "TCP allowed to any port (--cluster)")


def doctor_note(abi: int) -> str:
    """What `dsagent doctor --cluster` says about the tool worker's network."""
    if abi >= 4:
        return ("note: a tool worker that talks to the cluster may open TCP connections, to the scheduler's and "
                "workers' ports only (Landlock port rules; ports, not hosts)")
    return (f"note: a tool worker that talks to the cluster may open TCP connections to ANY port: Landlock ABI {abi} "
            "has no network rules (needs >= 4, Linux 6.7+)")
