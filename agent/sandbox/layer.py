"""What each isolation layer confines, how a layer's state is written, and which layers are
switched off (DSAGENT_DISABLE_LAYERS). Standard library only, and no package import: confine.py
runs as a script under `python -S` and imports this module by its file name.
"""

from __future__ import annotations

import os
from typing import Any

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
