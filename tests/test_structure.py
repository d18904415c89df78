"""The shape of the code: no import cycles between dsagent's modules.

Read from the source with `ast` (nothing is imported), so the check sees every import a module
can run: the ones at the top and the ones inside functions (a function-level import hides a
cycle from Python's loader, not from the reader of the code). Imports under `if TYPE_CHECKING:`
never run and are left out.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The one import package and the folders it is installed from (pyproject's package-dir mapping).
PACKAGE_DIRS = {"dsagent": ROOT / "agent", "dsagent.tools": ROOT / "tools", "dsagent.personas": ROOT / "personas"}


@functools.cache
def parsed(path: Path) -> ast.Module:
    """Each file is read and parsed once per test session (the checks below share the trees)."""
    return ast.parse(path.read_text(), str(path))


@functools.cache
def module_files() -> dict[str, Path]:
    """{dotted module name: file} for every module of the dsagent package."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom in the tree, at any depth, except under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The dsagent modules that module `name` (at `path`) imports."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    out: set[str] = set()

    def nearest_module(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in _import_nodes(parsed(path)):
        if isinstance(node, ast.Import):
            targets = [nearest_module(alias.name) for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: climb level-1 packages up from this module's package
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` imports the submodule; `from mod import name` the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else nearest_module(base)
                       for alias in node.names]
        out.update(t for t in targets if t and t != name)
    return out


@functools.cache
def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (iterative depth-first search, white/grey/black)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        iters = [iter(sorted(graph[start]))]
        state[start] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_graph_sees_the_modules_and_their_imports():
    """The reader itself works: it finds known modules and a known import edge."""
    graph = import_graph()
    assert {"dsagent.cli", "dsagent.tools.registry", "dsagent.backends.autopilot"} <= set(graph)
    assert "dsagent.tools.registry" in graph["dsagent.tools.train"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)



def is_tool_module(path: Path) -> bool:
    """Whether the module declares a tool: a function decorated with @tool (or @tool(...))."""
    for node in ast.walk(parsed(path)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in node.decorator_list:
                d = d.func if isinstance(d, ast.Call) else d
                if (isinstance(d, ast.Name) and d.id == "tool") or (isinstance(d, ast.Attribute) and d.attr == "tool"):
                    return True
    return False


def test_no_tool_module_imports_another():
    """Tool modules are thin adapters over library modules (which carry no @tool): what two tools
    share lives in the library, so no tool depends on another tool's module."""
    files = module_files()
    graph = import_graph()
    tools = {name for name, path in files.items() if is_tool_module(path)}
    assert {"dsagent.tools.train", "dsagent.tools.ensemble", "dsagent.tools.task"} <= tools
    crossing = sorted(f"{a} -> {b}" for a in tools for b in graph[a] & tools)
    assert not crossing, "tool modules importing tool modules: " + "; ".join(crossing)

# Modules allowed over MAX_LINES: none (the last five were split in issue 16). Keep it empty:
# split a module that grows past the limit instead of listing it here.
OVERSIZE_ALLOWED: set[str] = set()
MAX_LINES = 550


def test_no_module_over_the_size_limit():
    """Modules stay small enough to read: none in agent/ or tools/ over MAX_LINES lines."""
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines())
             for folder in ("agent", "tools") for p in (ROOT / folder).rglob("*.py")}
    over = {f: n for f, n in sizes.items() if n > MAX_LINES and f not in OVERSIZE_ALLOWED}
    assert not over, f"modules over {MAX_LINES} lines (split them along their sections): {over}"


# Each of these SDKs is imported by exactly one module, so that a change of SDK (or of its API)
# touches one file and the rest of the package can be imported without it.
SDK_OWNERS = {"prompt_toolkit": "dsagent.chat_input", "anthropic": "dsagent.backends.claude", "mcp": "dsagent.mcp_server"}


def test_each_sdk_is_imported_by_one_module():
    importers: dict[str, set[str]] = {sdk: set() for sdk in SDK_OWNERS}
    for name, path in module_files().items():
        for node in _import_nodes(parsed(path)):
            roots = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if not node.level else [])
            for root in (r.split(".")[0] for r in roots):
                if root in importers:
                    importers[root].add(name)
    assert importers == {sdk: {owner} for sdk, owner in SDK_OWNERS.items()}, importers


def test_every_subpackage_is_listed_for_the_wheel():
    """pyproject.toml lists the packages by hand (the package-dir mapping defeats discovery): a new
    folder left out installs nowhere, which only the slow wheel test would catch (tools.ranking was)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, name in (("agent", "dsagent"), ("tools", "dsagent.tools"), ("personas", "dsagent.personas")):
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    assert found <= listed, f"packages missing from pyproject.toml: {sorted(found - listed)}"
