"""The layers a worker applies to itself (Landlock, capabilities, seccomp), and the probe that
checks each one really blocks (run as `python -m dsagent.sandbox.inprocess probe` by detection).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

from dsagent.sandbox.landlock import apply_landlock
from dsagent.sandbox.layer import layer
from dsagent.sandbox.seccomp import apply_seccomp, drop_capabilities


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


if __name__ == "__main__":
    probe_main()
