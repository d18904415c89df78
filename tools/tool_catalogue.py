"""The installed tools as the agent process sees them — names, descriptions, argument schemas —
without importing the tool modules.

Why: the agent process only reads what the model and the loop read of a tool; the sandboxed worker
runs them. But the tool modules import pandas, scikit-learn and scipy at the top: 3.3 s of CPU on
an idle machine (2026-12-03), paid by every `dsagent run`, chat and MCP server before its worker
could start, out of the run's time budget, and then paid again by the worker. The first process
that imports them writes this catalogue; later ones read it.

The catalogue is keyed by everything that could change a tool's declaration: the tool entry
points, every .py file (path, size, mtime) of the packages that provide them, the directories on
sys.path (installing or removing a package changes them), Python's version and the catalogue's
format. A key that is not on disk imports the modules as before. Tools the loop answers itself
(ask_user) are always imported: they run in this process.

The cache directory is $DSAGENT_CACHE_DIR, else $XDG_CACHE_HOME/dsagent, else ~/.cache/dsagent; one
small JSON file per key. Nothing in it is trusted beyond the key: a file that does not parse is
rebuilt, and an unwritable directory only means the modules are imported each time.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

FORMAT = 1
KEEP = 8  # catalogues kept (one per key: checkouts, virtual environments, edits)


@dataclass
class CataloguedTool:
    """A tool declared by the catalogue: everything a ToolSpec gives the agent process except the
    function and the pydantic model. Its calls are validated by the worker, against the real
    ToolSpec, with the same message (agent/loop.py)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    module: str
    runs_in_loop: bool = False
    validated_by_worker: bool = True

    def to_anthropic(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


def cache_dir() -> Path:
    if os.environ.get("DSAGENT_CACHE_DIR"):
        return Path(os.environ["DSAGENT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dsagent"


def _package_root(module: str, origin: str) -> Path:
    """The outermost package directory holding a module file (up while the parent is a package),
    or the file itself for a module outside any package (never all of site-packages)."""
    here = Path(origin).parent
    if "." not in module and Path(origin).name != "__init__.py":
        return Path(origin)
    while (here.parent / "__init__.py").is_file():
        here = here.parent
    return here


def _files(root: Path) -> list[Path]:
    return [root] if root.is_file() else sorted(root.rglob("*.py"))


def catalogue_key(modules: list[str]) -> str | None:
    """What the declarations depend on, hashed; None when a module cannot be found without importing."""
    digest = hashlib.sha256(f"{FORMAT}|{sys.version}|{sys.prefix}".encode())
    roots: set[Path] = set()
    for module in modules:
        digest.update(f"|module {module}".encode())
        try:
            spec = importlib.util.find_spec(module)  # imports the parent packages only
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        roots.add(_package_root(module, spec.origin))
    for root in sorted(r for r in roots if not any(o in r.parents for o in roots)):
        for path in _files(root):
            try:
                st = path.stat()
            except OSError:  # removed while we looked: whatever it was, the key changes
                continue
            digest.update(f"|{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    # sys.path[0] is the script's directory or the working directory (whose contents change with every
    # run's output), never where packages are installed.
    for entry in sys.path[1:]:
        try:
            digest.update(f"|path {entry}:{os.stat(entry).st_mtime_ns}".encode())
        except OSError:
            continue
    return digest.hexdigest()[:24]


def read_catalogue(key: str) -> list[dict[str, Any]] | None:
    try:
        data = json.loads((cache_dir() / f"tools-{key}.json").read_text())
    except (OSError, ValueError):
        return None
    return data.get("tools") if isinstance(data, dict) and data.get("key") == key else None


def write_catalogue(key: str, specs: dict[str, Any]) -> None:
    entries = [s.to_anthropic() | {"module": s.module, "runs_in_loop": s.runs_in_loop} for s in specs.values()]
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".tools-{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps({"key": key, "tools": entries}))
        os.replace(tmp, directory / f"tools-{key}.json")  # atomic: a concurrent reader sees all or nothing
        # Every edit of a tool module (a developer's checkout) writes a new key: keep the newest few.
        for old in sorted(directory.glob("tools-*.json"), key=lambda p: p.stat().st_mtime)[:-KEEP]:
            old.unlink(missing_ok=True)
    except OSError:
        pass  # an unwritable cache only costs the imports next time


def catalogued_tools(modules: list[str], import_all: Callable[[], dict[str, Any]], registered: dict[str, Any]) -> dict[str, Any]:
    """The tools of `modules` from the catalogue when it matches, else `import_all()` (which
    imports them and returns their ToolSpecs), written to the catalogue for the next process.
    `registered`: the ToolSpecs this process holds already (the registry's, updated by imports)."""
    key = catalogue_key(modules)
    entries = read_catalogue(key) if key else None
    if entries is None:
        # Written only by a process that declared no tool of its own before (the CLI, an MCP server;
        # not a test or a host application with tools of its own): then what it imports is exactly
        # what the next process would.
        fresh = all(spec.module in modules for spec in registered.values())
        specs = import_all()
        if key and fresh:
            write_catalogue(key, specs)
        return specs

    tools: dict[str, Any] = {}
    for e in entries:
        if e.get("runs_in_loop"):  # answered in this process: the real ToolSpec (its module is light)
            importlib.import_module(e["module"])
        tools[e["name"]] = CataloguedTool(**e)  # the fields write_catalogue wrote
    # Tools this process has imported or declared itself (a test's, a host application's) are the
    # real ToolSpecs, in the catalogue's order, the others after it.
    for name, spec in registered.items():
        tools[name] = spec
    missing = [name for name, t in tools.items() if t.runs_in_loop and isinstance(t, CataloguedTool)]
    return import_all() if missing else tools
