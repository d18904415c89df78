"""Which isolation layers this machine has: detection runs the real thing once per process
(`layers()`): a probe process is started exactly as a worker would be and reports what actually
took effect. Nothing is assumed. `python -m dsagent.sandbox` prints it (`--summary`: one line).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from dsagent.sandbox.cgroup import PidsCgroup
from dsagent.sandbox.layer import disabled, layer
from dsagent.sandbox.plan import Limits, Plan


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
    argv, env = plan.command([sys.executable, "-m", "dsagent.sandbox.inprocess", "probe"])
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
