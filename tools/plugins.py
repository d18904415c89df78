"""Loading a registry fed by an entry-point group (model families, task types): one rule for both.

The built-ins come first and are imported directly, so a broken built-in fails loudly; every other
entry point of the group is a plugin: its object (or list of objects) must be of the registry's
kind, is stamped with the distribution that provides it, and a broken plugin is skipped with a
warning rather than taking the others down. No ML library is imported here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable


def load_registry(group: str, builtin_module: str, builtins: str, kind: type, label: str,
                  check: Callable[[Any], None] | None = None) -> dict[str, Any]:
    import importlib
    import warnings
    from importlib.metadata import entry_points

    found = {obj.name: obj for obj in getattr(importlib.import_module(builtin_module), builtins)}
    for ep in entry_points(group=group):
        if ep.value.startswith(builtin_module):
            continue
        dist = getattr(ep, "dist", None)
        try:
            loaded = ep.load()
            for obj in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
                if not isinstance(obj, kind):
                    raise TypeError(f"{ep.value} is not a {kind.__name__}")
                if check is not None:
                    check(obj)
                found.setdefault(obj.name, replace(obj, package=dist.name if dist else "?"))
        except Exception as exc:  # noqa: BLE001 - one bad plugin must not take the others down
            warnings.warn(f"dsagent: skipping {label} plugin {ep.name}: {type(exc).__name__}: {exc}", stacklevel=3)
    return found
