"""Isolation layers for the tool worker: which ones this machine has, and how to apply them.

Layers (docs/security.md says what each blocks and what it does not):
- bubblewrap   a private mount/network/PID/IPC namespace: the worker sees system dirs, the
               interpreter, the project code and the data read-only, and writes only to the
               session's artifacts and cache; no network interface but loopback.
- landlock     kernel path rules applied by the worker to itself (same paths as above);
               TCP bind/connect denied when the ABI has it (>= 4).
- capabilities every capability dropped, bounding set emptied (root keeps no privileges).
- seccomp      a BPF filter: no sockets but AF_UNIX/AF_NETLINK, no ptrace, mount, unshare,
               setns, bpf, io_uring, kexec, modules, keyrings; no clone with namespace flags.
- pids-cgroup  a cgroup with pids.max around the worker: a fork bomb runs out of pids.
- rlimits      AS, CPU backstop, FSIZE, NOFILE, CORE=0, set before the worker starts.
- timeout      the parent kills the worker's process group (and cgroup) at the deadline.
- clean-env    no secrets in the worker's environment.

Detection runs the real thing once per process (`layers()`): a probe process is started
exactly as a worker would be and reports what actually took effect. Nothing is assumed.

Only the standard library is used: this module runs inside the sandbox before anything else.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
# The few /etc files a Python process needs. /etc/passwd, shadow, ssh, ssl... stay hidden.
ETC_FILES = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
             "/etc/timezone", "/etc/alternatives", "/etc/hosts", "/etc/mime.types", "/etc/fonts"]
DEV_FILES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]
CPU_INFO = "/sys/devices/system/cpu"  # BLAS/OpenMP/joblib size their thread pools from it

# What each layer confines; run_python needs "filesystem" and "network" from active layers.
CONFINES = {
    "bubblewrap": ["filesystem", "network", "processes"],
    "landlock": ["filesystem"],
    "seccomp": ["network", "kernel"],
    "capabilities": ["privileges"],
    "pids-cgroup": ["process-count"],
    "rlimits": ["memory", "cpu", "file-size", "open-files"],
    "timeout": ["wall-clock"],
    "clean-env": ["secrets"],
}

# The launcher sets rlimits and joins the cgroup, then execs: no preexec_fn in a threaded parent.
LAUNCHER = r"""
import os, resource, sys, json
spec = json.loads(sys.argv[1])
for name, (soft, hard) in spec.get("rlimits", {}).items():
    res = getattr(resource, name)
    cur = resource.getrlimit(res)[1]
    if cur != resource.RLIM_INFINITY and not os.geteuid() == 0:  # a user cannot raise a hard limit
        soft, hard = min(soft, cur), min(hard, cur)
    resource.setrlimit(res, (soft, hard))
if spec.get("cgroup"):
    with open(os.path.join(spec["cgroup"], "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
os.execv(sys.argv[2], sys.argv[2:])
"""


def disabled() -> set[str]:
    """Layers switched off with DSAGENT_DISABLE_LAYERS=a,b (debugging, and tests of the fallbacks)."""
    return {x.strip() for x in os.environ.get("DSAGENT_DISABLE_LAYERS", "").split(",") if x.strip()}


def layer(active: bool, reason: str, name: str) -> dict[str, Any]:
    return {"active": bool(active), "reason": reason, "confines": CONFINES.get(name, [])}


def without_network(layers: dict[str, dict[str, Any]], why: str) -> dict[str, dict[str, Any]]:
    """The layers of a worker allowed TCP (--cluster): none of them confines the network any more,
    and each says why, so run_python refuses and `doctor`/session.json do not overstate."""
    out = {}
    for name, info in layers.items():
        if "network" in (info.get("confines") or CONFINES.get(name, [])):
            info = {**info, "confines": [c for c in info.get("confines") or CONFINES.get(name, []) if c != "network"],
                    "reason": f"{info.get('reason', '')}; network NOT confined: {why}".lstrip("; ")}
        out[name] = info
    return out


# ---------------------------------------------------------------- what the worker may see


def python_paths() -> list[Path]:
    """The interpreter, its stdlib, the venv and site-packages (read-only)."""
    prefixes = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix),
                Path(os.path.realpath(sys.executable)).parent.parent}
    paths = set(prefixes)
    script_dir = Path(os.path.abspath(sys.argv[0] or ".")).parent if sys.argv and sys.argv[0] else None
    never = {Path("/"), Path("/tmp"), Path.home(), Path.cwd(), script_dir}
    for entry in sys.path:
        if not entry or not os.path.exists(entry):
            continue
        p = Path(entry).resolve()
        if any(p == q or q in p.parents for q in prefixes):
            continue  # already covered
        # Never the project root or an ancestor (.git, sessions), nor a script's or temp dir.
        if p == PROJECT_ROOT or p in PROJECT_ROOT.parents or p in never:
            continue
        paths.add(p)
    return sorted(paths)


def code_dirs() -> list[Path]:
    """Only the code the worker needs: not .git, other sessions, examples or the user's files.

    In a source checkout the one `dsagent` package is three sibling folders (agent/, tools/,
    personas/) joined by the editable install's finder; in a wheel it is one folder. Asked of the
    import system so both look the same (this module itself stays stdlib-only: confine runs it
    with -S as a script)."""
    import importlib.util

    found: list[Path] = []
    for name in ("dsagent", "dsagent.tools", "dsagent.personas"):
        spec = importlib.util.find_spec(name)
        found += [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
    return found


def read_paths(session_dir: Path, data_paths: list[Path], roots: list[Path], extra: list[Path]) -> list[Path]:
    found = [Path(p) for p in SYSTEM_DIRS + ETC_FILES if os.path.lexists(p)]
    found += python_paths() + code_dirs()
    found += [Path(p) for p in (CPU_INFO,) if os.path.isdir(p)]
    found += [session_dir] + list(data_paths) + list(roots) + list(extra)
    out: list[Path] = []
    for p in found:
        p = Path(os.path.abspath(p))
        # A symlinked data path is reachable by both names (system dir links become --symlink).
        names = [p] if str(p) in SYSTEM_DIRS else [p, p.resolve()]
        for q in names:
            if os.path.lexists(q) and q not in out and q != Path("/"):
                out.append(q)
    return out


def depth(p: Path | str) -> int:
    return len(Path(p).parts)


def bwrap_argv(plan: dict[str, Any], env: dict[str, str]) -> list[str]:
    """bubblewrap's command line for a plan (see Plan in dsagent.sandbox)."""
    argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    if plan.get("tcp"):
        argv.append("--share-net")  # --cluster: the Dask client must reach the scheduler and workers
    for key, value in sorted(env.items()):
        if key != "JPY_PARENT_PID":  # a Jupyter parent pid from outside means nothing in our PID namespace
            argv += ["--setenv", key, value]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    # Mounts apply in order: shallow first, so a deeper writable bind (artifacts) lands on top of
    # a read-only parent (session dir), and everything under /tmp lands on top of the tmpfs.
    ops: list[tuple[int, list[str]]] = []
    for p in plan["read"]:
        if os.path.islink(p) and p in SYSTEM_DIRS:  # merged /usr: /bin -> usr/bin
            ops.append((depth(p), ["--symlink", os.readlink(p), p]))
        else:
            ops.append((depth(p), ["--ro-bind", p, p]))
    ops += [(depth(p), ["--bind", p, p]) for p in plan["write"]]
    for _, op in sorted(ops, key=lambda item: item[0]):  # stable: equal depths keep their order
        argv += op
    argv += ["--chdir", plan["cwd"]]
    return argv


def launcher_argv(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, "-S", "-c", LAUNCHER, json.dumps(spec)]


# ---------------------------------------------------------------- pids cgroup


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


# ---------------------------------------------------------------- Landlock (ctypes)

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_LANDLOCK_CREATE, _SYS_LANDLOCK_ADD, _SYS_LANDLOCK_RESTRICT = 444, 445, 446  # same on x86_64 and arm64
_PR_SET_NO_NEW_PRIVS = 38


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
        from dsagent.net_rules import unconfined_note

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
            from dsagent.net_rules import restrict_tcp

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


# ---------------------------------------------------------------- seccomp (raw BPF via ctypes)

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


# ---------------------------------------------------------------- capabilities


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


# ---------------------------------------------------------------- in the worker


def apply_in_process(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Apply Landlock and seccomp to this process as `spec` asks; report what took effect."""
    result: dict[str, dict[str, Any]] = {}
    if spec.get("landlock"):
        ll = spec["landlock"]
        try:
            result["landlock"] = layer(True, apply_landlock(ll["read"], ll["write"], ll["rw_files"],
                                                            ll.get("list_only", []), tcp=bool(spec.get("tcp")),
                                                            tcp_ports=spec.get("tcp_ports") or []),
                                       "landlock")
        except OSError as exc:
            result["landlock"] = layer(False, f"not applied: {exc.strerror or exc}", "landlock")
    if spec.get("drop_caps"):
        try:
            result["capabilities"] = layer(True, drop_capabilities(), "capabilities")
        except OSError as exc:
            result["capabilities"] = layer(False, f"not dropped: {exc.strerror or exc}", "capabilities")
    if spec.get("seccomp"):
        try:
            result["seccomp"] = layer(True, apply_seccomp(tcp=bool(spec.get("tcp"))), "seccomp")
        except OSError as exc:
            result["seccomp"] = layer(False, f"not applied: {exc.strerror or exc}", "seccomp")
    return result


def confine_main(argv: list[str]) -> None:
    """`python -S .../isolation.py confine [--cpu S] -- CMD...` (a script: -S skips site, so no package import): a tighter child.

    Used by tools (through DSAGENT_CONFINE_PREFIX) for code they do not trust: adds a seccomp
    filter that denies setsid/setpgid, so every process it starts stays in its process group
    and dies with it, and socket() altogether (socketpair still works for multiprocessing):
    without bubblewrap a unix socket path such as /var/run/docker.sock would otherwise be
    reachable. Plus an optional CPU-time limit. Layers of the worker are inherited.
    """
    import resource

    args = argv[:]
    if args[:1] == ["--cpu"]:
        cpu = int(float(args[1]))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    # DSAGENT_DISABLE_LAYERS=seccomp turns this filter off too: a switched-off layer that still
    # half-applies would make the layer report lie, and tests could not show what it blocks.
    if "seccomp" not in disabled():
        try:
            apply_seccomp(["setsid", "setpgid", "socket"])
        except OSError as exc:
            print(f"[sandbox] extra seccomp filter not applied: {exc}", file=sys.stderr)
    os.execv(args[0], args)


# ---------------------------------------------------------------- detection


def probe_main() -> None:
    """Inside a probe worker: apply the in-process layers, then check each one really blocks."""
    spec = json.loads(os.environ.pop("DSAGENT_SANDBOX", "{}"))
    report = apply_in_process(spec)
    if report.get("seccomp", {}).get("active"):
        try:
            socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
            report["seccomp"] = layer(False, "filter installed but an AF_INET socket still opened", "seccomp")
        except PermissionError:
            pass
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()  # must still work (Jupyter IPC)
    if report.get("capabilities", {}).get("active"):
        status = Path("/proc/self/status").read_text()
        if "CapEff:\t0000000000000000" not in status or "CapBnd:\t0000000000000000" not in status:
            report["capabilities"] = layer(False, "capabilities still present after dropping", "capabilities")
    if report.get("landlock", {}).get("active"):
        try:
            open(os.path.join(spec["session_dir"], "landlock-probe"), "w").close()
            report["landlock"] = layer(False, "ruleset applied but a write outside artifacts succeeded", "landlock")
        except OSError:
            pass
    print(json.dumps(report))


_DETECTED: dict[frozenset, dict[str, dict[str, Any]]] = {}
_DETECT_LOCK = threading.Lock()


def layers(refresh: bool = False) -> dict[str, dict[str, Any]]:
    """{layer: {"active", "reason", "confines"}} for this machine, detected once by trying."""
    key = frozenset(disabled())
    with _DETECT_LOCK:
        if key not in _DETECTED or refresh:
            _DETECTED[key] = _detect()
        return json.loads(json.dumps(_DETECTED[key]))


def _detect() -> dict[str, dict[str, Any]]:
    from dsagent.sandbox import Limits, Plan  # local: dsagent.sandbox imports this module

    result: dict[str, dict[str, Any]] = {}
    off = disabled()
    with tempfile.TemporaryDirectory(prefix="dsagent-probe-") as tmp:
        artifacts = Path(tmp) / "session" / "artifacts"
        artifacts.mkdir(parents=True)
        report = None
        if "bubblewrap" in off:
            result["bubblewrap"] = layer(False, "disabled by DSAGENT_DISABLE_LAYERS", "bubblewrap")
        elif shutil.which("bwrap") is None:
            result["bubblewrap"] = layer(False, "bwrap not installed (Debian/Ubuntu: apt install bubblewrap)", "bubblewrap")
        else:
            report, err = _run_probe(Plan.build(artifacts, Limits(), use_bwrap=True))
            if report is None:
                result["bubblewrap"] = layer(False, f"bwrap is installed but failed here: {err}", "bubblewrap")
            else:
                result["bubblewrap"] = layer(True, "private mount, network, PID and IPC namespaces; "
                                                   "only the session's artifacts are writable", "bubblewrap")
        if report is None:  # the in-process layers, on their own
            report, err = _run_probe(Plan.build(artifacts, Limits(), use_bwrap=False))
        if report is None:
            report = {name: layer(False, f"probe failed: {err}", name) for name in ("landlock", "seccomp", "capabilities")}
        result.update(report)
    for name in ("landlock", "seccomp", "capabilities"):
        if name in off:
            result[name] = layer(False, "disabled by DSAGENT_DISABLE_LAYERS", name)
    if "pids-cgroup" in off:
        result["pids-cgroup"] = layer(False, "disabled by DSAGENT_DISABLE_LAYERS", "pids-cgroup")
        return _static_layers(result)
    try:
        PidsCgroup.create(64).remove()
        result["pids-cgroup"] = layer(True, "pids.max bounds the worker's processes and threads", "pids-cgroup")
    except OSError as exc:
        result["pids-cgroup"] = layer(False, f"cannot create a pids cgroup ({exc.strerror or exc}); "
                                             "a fork bomb is bounded only by the timeout", "pids-cgroup")
    return _static_layers(result)


def _static_layers(result: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    result["rlimits"] = layer(True, "RLIMIT_AS, CPU backstop, FSIZE, NOFILE, CORE=0", "rlimits")
    result["timeout"] = layer(True, "a wall-clock deadline kills the worker's process group", "timeout")
    result["clean-env"] = layer(True, "no *_KEY/*_TOKEN/*_SECRET/ANTHROPIC_* variables", "clean-env")
    return result


def _run_probe(plan: Any) -> tuple[dict[str, Any] | None, str]:
    argv, env = plan.command([sys.executable, "-m", "dsagent.isolation", "probe"])
    try:
        proc = subprocess.run(argv, env=env, cwd=plan.cwd, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    finally:
        plan.cleanup()
    if proc.returncode != 0:
        lines = (proc.stderr.decode(errors="replace").strip() or f"exit code {proc.returncode}").splitlines()
        return None, lines[-1][:300]
    try:
        return json.loads(proc.stdout.decode().strip().splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, "the probe printed no report"


def summary_line(found: dict[str, dict[str, Any]]) -> str:
    """One line for the end of a CI log: the active layers, and each missing one with its reason."""
    on, off = [], []
    for name, info in found.items():
        if not info["active"]:
            off.append(f"{name} ({info['reason']})")
        elif name == "landlock" and info["reason"].startswith("ABI"):
            on.append(f"landlock ({info['reason'].split(';')[0]})")  # which rules the kernel has
        else:
            on.append(name)
    return f"sandbox layers: on: {', '.join(on) or 'none'}; OFF: {'; '.join(off) or 'none'}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["probe"]:
        probe_main()
    elif sys.argv[1:2] == ["confine"]:
        confine_main(sys.argv[2:])
    elif sys.argv[1:2] == ["--summary"]:
        print(summary_line(layers()))
    else:
        print(json.dumps(layers(), indent=2))
