"""Landlock (through ctypes): kernel path rules the worker applies to itself; TCP bind/connect
denied when the ABI has it (>= 4)."""

from __future__ import annotations

import ctypes
import errno
import os

from dsagent.sandbox.seccomp import _PR_SET_NO_NEW_PRIVS, _libc  # the same libc handle and prctl


_SYS_LANDLOCK_CREATE, _SYS_LANDLOCK_ADD, _SYS_LANDLOCK_RESTRICT = 444, 445, 446  # same on x86_64 and arm64


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 14, 1 << 15
_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV


def landlock_abi() -> int:
    abi = _libc.syscall(_SYS_LANDLOCK_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return abi if abi > 0 else 0


def apply_landlock(read: list[str], write: list[str], rw_files: list[str], list_only: list[str] = (),
                   tcp: bool = False, tcp_ports: list[int] = ()) -> str:
    """Restrict this process (and its future children) to the given paths. Returns a note.

    Raises OSError when the kernel has no Landlock or refuses the ruleset.
    """
    abi = landlock_abi()
    if abi < 1:
        raise OSError(ctypes.get_errno() or errno.ENOSYS, "Landlock is not supported by this kernel")
    handled = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        handled |= 1 << 13  # refer
    if abi >= 3:
        handled |= _FS_TRUNCATE
    if abi >= 5:
        handled |= _FS_IOCTL_DEV
    attr = _RulesetAttr(handled, 0, 0)
    notes = [f"ABI {abi}"]
    if abi >= 4 and (not tcp or tcp_ports):
        attr.handled_access_net = 0b11  # bind_tcp | connect_tcp: none, or connect to tcp_ports only (below)
        if not tcp:
            notes.append("TCP bind/connect denied")
    elif tcp:
        from dsagent.sandbox.net_rules import unconfined_note

        notes.append(unconfined_note(abi))
    if abi >= 6:
        attr.scoped = 0b11  # abstract unix sockets and signals stay inside the sandbox
        notes.append("signals and abstract sockets scoped")
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    fd = _libc.syscall(_SYS_LANDLOCK_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        read_rights = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
        # list_only: the project root, which Python's import system must list (not read) to find
        # agent/ and tools/ in a fresh process.
        for paths, rights in ((read, read_rights), (write, handled), (rw_files, _FILE_RIGHTS & handled),
                              (list_only, _FS_READ_DIR)):
            for path in paths:
                _landlock_rule(fd, path, rights)
        if tcp and tcp_ports and abi >= 4:  # --cluster: the scheduler's, workers' and database's ports only
            from dsagent.sandbox.net_rules import restrict_tcp

            notes.append(restrict_tcp(_libc, _SYS_LANDLOCK_ADD, fd, tcp_ports))
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS) failed")
        if _libc.syscall(_SYS_LANDLOCK_RESTRICT, fd, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(fd)
    return "; ".join(notes)


def _landlock_rule(ruleset_fd: int, path: str, rights: int) -> None:
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that does not exist needs no rule
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS  # directory rights on a file rule are EINVAL
        rule = _PathBeneath(rights, pfd)
        if _libc.syscall(_SYS_LANDLOCK_ADD, ruleset_fd, 1, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(pfd)
