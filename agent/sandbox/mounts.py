"""What the worker may see: the read-only and writable paths, bubblewrap's command line, and the
launcher that sets rlimits and joins the cgroup before the worker starts.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout (agent/sandbox/mounts.py), or site-packages
SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
# The few /etc files a Python process needs. /etc/passwd, shadow, ssh, ssl... stay hidden.
ETC_FILES = ["/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
             "/etc/timezone", "/etc/alternatives", "/etc/hosts", "/etc/mime.types", "/etc/fonts"]
DEV_FILES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]
CPU_INFO = "/sys/devices/system/cpu"  # BLAS/OpenMP/joblib size their thread pools from it

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
