"""seccomp (a raw BPF program through ctypes) and dropping every capability. Standard library
only, and no package import: confine.py runs as a script under `python -S` and imports this module
by its file name.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import socket
from pathlib import Path
from typing import Any

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_NO_NEW_PRIVS = 38


_ARCH = {  # audit arch, syscall numbers (from asm/unistd_64.h and asm-generic/unistd.h)
    "x86_64": (0xC000003E, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "mount": 165, "umount2": 166,
        "pivot_root": 155, "chroot": 161, "unshare": 272, "setns": 308, "bpf": 321, "perf_event_open": 298,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 246,
        "kexec_file_load": 320, "init_module": 175, "finit_module": 313, "delete_module": 176,
        "keyctl": 250, "add_key": 248, "request_key": 249, "userfaultfd": 323, "swapon": 167,
        "swapoff": 168, "reboot": 169, "open_by_handle_at": 304, "name_to_handle_at": 303,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
        "open_tree": 428, "mount_setattr": 442, "acct": 163, "settimeofday": 164, "clock_settime": 227,
        "adjtimex": 159, "clock_adjtime": 305, "quotactl": 179, "iopl": 172, "ioperm": 173,
        "socket": 41, "clone": 56, "clone3": 435, "setsid": 112, "setpgid": 109}),
    "aarch64": (0xC00000B7, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "mount": 40, "umount2": 39,
        "pivot_root": 41, "chroot": 51, "unshare": 97, "setns": 268, "bpf": 280, "perf_event_open": 241,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "kexec_load": 104,
        "kexec_file_load": 294, "init_module": 105, "finit_module": 273, "delete_module": 106,
        "keyctl": 219, "add_key": 217, "request_key": 218, "userfaultfd": 282, "swapon": 224,
        "swapoff": 225, "reboot": 142, "open_by_handle_at": 265, "name_to_handle_at": 264,
        "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "move_mount": 429,
        "open_tree": 428, "mount_setattr": 442, "acct": 89, "settimeofday": 170, "clock_settime": 112,
        "adjtimex": 171, "clock_adjtime": 266, "quotactl": 60,
        "socket": 198, "clone": 220, "clone3": 435, "setsid": 157, "setpgid": 154}),
}
DENIED = ["ptrace", "process_vm_readv", "process_vm_writev", "mount", "umount2", "pivot_root", "chroot",
          "unshare", "setns", "bpf", "perf_event_open", "io_uring_setup", "io_uring_enter",
          "io_uring_register", "kexec_load", "kexec_file_load", "init_module", "finit_module",
          "delete_module", "keyctl", "add_key", "request_key", "userfaultfd", "swapon", "swapoff",
          "reboot", "open_by_handle_at", "name_to_handle_at", "fsopen", "fsconfig", "fsmount", "fspick",
          "move_mount", "open_tree", "mount_setattr", "acct", "settimeofday", "clock_settime", "adjtimex",
          "clock_adjtime", "quotactl", "iopl", "ioperm"]
_ALLOWED_FAMILIES = [socket.AF_UNIX, 16]  # AF_NETLINK: glibc asks it about interfaces
_INET_FAMILIES = [socket.AF_INET, socket.AF_INET6]  # only with --cluster: the Dask client speaks TCP
_NAMESPACE_FLAGS = 0x7E020080  # CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET,TIME}
_RET_ALLOW, _RET_KILL, _RET_ERRNO = 0x7FFF0000, 0x80000000, 0x00050000


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_program(arch: str, extra_denied: list[str] = (), tcp: bool = False) -> list[tuple[int, Any, Any, int]]:
    """The filter as (code, jump-true label, jump-false label, k); labels resolved by _assemble."""
    audit, nrs = _ARCH[arch]
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    prog: list[tuple[int, Any, Any, int]] = [
        (ld, 0, 0, 4), (jeq, 1, 0, audit), (ret, 0, 0, _RET_KILL),  # wrong arch: kill
        (ld, 0, 0, 0),
    ]
    if arch == "x86_64":  # x32 syscalls would bypass the numbers below
        prog.append((jge, "enosys", 0, 0x40000000))
    for name in list(DENIED) + list(extra_denied):
        if name in nrs:  # iopl/ioperm exist on x86 only
            prog.append((jeq, "eperm", 0, nrs[name]))
    prog += [(jeq, "enosys", 0, nrs["clone3"]),  # flags unreadable (pointer): glibc falls back to clone
             (jeq, "socket", 0, nrs["socket"]), (jeq, "clone", 0, nrs["clone"]),
             (ret, 0, 0, _RET_ALLOW)]
    prog += [("socket", None, None, 0), (ld, 0, 0, 16)]
    prog += [(jeq, "allow", 0, fam) for fam in _ALLOWED_FAMILIES + (_INET_FAMILIES if tcp else [])]
    prog += [(ret, 0, 0, _RET_ERRNO | errno.EPERM)]
    prog += [("clone", None, None, 0), (ld, 0, 0, 16), (jset, "eperm", "allow", _NAMESPACE_FLAGS)]
    prog += [("allow", None, None, 0), (ret, 0, 0, _RET_ALLOW),
             ("eperm", None, None, 0), (ret, 0, 0, _RET_ERRNO | errno.EPERM),
             ("enosys", None, None, 0), (ret, 0, 0, _RET_ERRNO | errno.ENOSYS)]
    return prog


def _assemble(prog: list[tuple[int, Any, Any, int]]) -> list[tuple[int, int, int, int]]:
    labels, out = {}, []
    for item in prog:
        if isinstance(item[0], str):
            labels[item[0]] = len(out)
        else:
            out.append(item)
    resolved = []
    for i, (code, jt, jf, k) in enumerate(out):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        resolved.append((code, jt, jf, k))
    return resolved


def apply_seccomp(extra_denied: list[str] = (), tcp: bool = False) -> str:
    """Install the filter on this process (inherited by children). Raises OSError if impossible."""
    arch = platform.machine()
    if arch not in _ARCH:
        raise OSError(errno.ENOSYS, f"no seccomp syscall table for {arch}")
    code = _assemble(seccomp_program(arch, list(extra_denied), tcp))
    filters = (_SockFilter * len(code))(*[_SockFilter(*c) for c in code])
    prog = _SockFprog(len(code), filters)
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(NO_NEW_PRIVS) failed")
    PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
    return f"{len(DENIED) + len(extra_denied)} syscalls denied; sockets limited to AF_UNIX/AF_NETLINK"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities() -> str:
    """Drop every capability, for good: a root worker without bubblewrap would otherwise keep
    CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_DAC_OVERRIDE... The bounding set is emptied first so that
    running a program cannot grant them back."""
    PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text()) if os.path.exists("/proc/sys/kernel/cap_last_cap") else 40
    for cap in range(last + 1):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() not in (errno.EINVAL,):
            if ctypes.get_errno() != errno.EPERM:  # EPERM: no CAP_SETPCAP, i.e. already unprivileged
                raise OSError(ctypes.get_errno(), f"PR_CAPBSET_DROP {cap} failed")
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header, data = _CapHeader(0x20080522, 0), (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    return "all capabilities dropped (bounding set empty)"
