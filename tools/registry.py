"""One declaration per tool: a typed function with a docstring becomes one ToolSpec.

From a ToolSpec come the Anthropic `tools=[...]` entry, the MCP tool, the autopilot's
calls (validated the same way) and the plain Python callable. The context parameter
(annotated `ToolContext`) is injected by the runner and kept out of the schema.

Tools are plugins: built-in modules register through the `dsagent.tools` entry-point group
exactly as a third-party package would (see `load_plugins`).
"""

from __future__ import annotations

import functools
import inspect
import json
import time
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

ENTRY_POINT_GROUP = "dsagent.tools"


class ToolError(Exception):
    """An expected failure a tool reports to the model: one line, what is wrong and what to do."""


@dataclass
class ToolContext:
    """What the runner hands a tool. Plain data so it crosses a process boundary as JSON."""

    session_dir: Path
    artifacts_dir: Path
    data_path: Path | None = None
    seed: int = 0
    answers: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None  # epoch seconds; tools should finish their own work before it
    roots: list[str] = field(default_factory=list)  # directories tools may read data from
    sandbox: dict[str, Any] = field(default_factory=dict)  # which isolation layers are active
    cluster: str | None = None  # tcp:// address of the Dask scheduler (--cluster), when there is one
    tuning_storage: str | None = None  # --tuning-storage: a journal file or a database URL for Optuna
    progress: Callable[[str, float | None], None] | None = None

    def report(self, message: str, fraction: float | None = None) -> None:
        if self.progress is not None:
            self.progress(message, fraction)

    def seconds_left(self, default: float = 60.0) -> float:
        if self.deadline is None:
            return default
        return max(0.0, self.deadline - time.time())

    def to_json(self) -> dict[str, Any]:
        return {
            "session_dir": str(self.session_dir),
            "artifacts_dir": str(self.artifacts_dir),
            "data_path": str(self.data_path) if self.data_path else None,
            "seed": self.seed,
            "answers": self.answers,
            "deadline": self.deadline,
            "roots": self.roots,
            "sandbox": self.sandbox,
            "cluster": self.cluster,
            "tuning_storage": self.tuning_storage,
        }

    def detached(self) -> "ToolContext":
        """A copy without the progress callback: what travels to another process (a Dask worker)."""
        return ToolContext.from_json(self.to_json())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ToolContext":
        return cls(
            session_dir=Path(data["session_dir"]),
            artifacts_dir=Path(data["artifacts_dir"]),
            data_path=Path(data["data_path"]) if data.get("data_path") else None,
            seed=int(data.get("seed", 0)),
            answers=dict(data.get("answers") or {}),
            deadline=data.get("deadline"),
            roots=list(data.get("roots") or []),
            sandbox=dict(data.get("sandbox") or {}),
            cluster=data.get("cluster"),
            tuning_storage=data.get("tuning_storage"),
        )


@dataclass
class ToolOutput:
    """What a tool returns.

    `summary` is what the model reads (keep it compact: well under ~1,500 tokens);
    `record` is the full JSON record saved beside the artifacts; `files` names the
    artifacts the call wrote (label -> path relative to artifacts/).
    """

    summary: dict[str, Any] | str
    record: dict[str, Any] | None = None
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "record": self.record, "files": self.files}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ToolOutput":
        return cls(summary=data.get("summary", ""), record=data.get("record"), files=dict(data.get("files") or {}))


@dataclass
class ToolSpec:
    name: str
    description: str
    input_model: type[BaseModel]
    handler: Callable[..., Any]
    context_param: str | None
    module: str
    runs_in_loop: bool = False  # ask_user: answered by the loop's Asker, not by a worker

    @property
    def input_schema(self) -> dict[str, Any]:
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    def to_anthropic(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}

    def validate(self, arguments: dict[str, Any] | None) -> BaseModel:
        """Raises pydantic.ValidationError on bad arguments."""
        return self.input_model.model_validate(arguments or {})

    def invoke(self, context: ToolContext | None, arguments: dict[str, Any] | None) -> ToolOutput:
        params = self.validate(arguments)
        kwargs = {name: getattr(params, name) for name in type(params).model_fields}
        if self.context_param:
            kwargs[self.context_param] = context
        result = self.handler(**kwargs)
        if isinstance(result, ToolOutput):
            return result
        if isinstance(result, dict):
            return ToolOutput(summary=result, record=result)
        return ToolOutput(summary=str(result))


def _split_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Description = the docstring minus an `Args:` block; per-argument text from that block."""
    lines = inspect.cleandoc(doc or "").splitlines()
    description: list[str] = []
    arg_docs: dict[str, str] = {}
    current: str | None = None
    in_args = False
    for line in lines:
        stripped = line.strip()
        if stripped in ("Args:", "Arguments:", "Parameters:"):
            in_args = True
            continue
        if in_args:
            if not stripped:
                current = None
                continue
            if ":" in stripped and not line.startswith("        ") and stripped.split(":", 1)[0].isidentifier():
                current, text = stripped.split(":", 1)
                arg_docs[current] = text.strip()
            elif current:
                arg_docs[current] += " " + stripped
            continue
        description.append(line)
    return "\n".join(description).strip(), arg_docs


_REGISTRY: dict[str, ToolSpec] = {}
_LOADED = False


def tool(func: Callable[..., Any] | None = None, *, name: str | None = None, runs_in_loop: bool = False):
    """Register a typed function as a tool. Usable as `@tool` or `@tool(name=...)`."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        spec = build_spec(fn, name=name, runs_in_loop=runs_in_loop)
        _REGISTRY[spec.name] = spec
        fn.tool_spec = spec  # type: ignore[attr-defined]
        return fn

    return wrap(func) if func is not None else wrap


def build_spec(fn: Callable[..., Any], *, name: str | None = None, runs_in_loop: bool = False) -> ToolSpec:
    hints = typing.get_type_hints(fn)
    description, arg_docs = _split_docstring(fn.__doc__ or "")
    if not description:
        raise TypeError(f"tool {fn.__name__} needs a docstring: it is what the model reads")
    fields: dict[str, Any] = {}
    context_param = None
    for pname, param in inspect.signature(fn).parameters.items():
        annotation = hints.get(pname, Any)
        if annotation is ToolContext or annotation == (ToolContext | None):
            context_param = pname
            continue
        if isinstance(param.default, FieldInfo):  # the signature already carries a Field(...)
            info = param.default
            if info.description is None:
                info.description = arg_docs.get(pname)
            fields[pname] = (annotation, info)
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, Field(default, description=arg_docs.get(pname)))
    model = create_model(  # type: ignore[call-overload]
        f"{fn.__name__}_input", __config__=ConfigDict(extra="forbid"), **fields
    )
    return ToolSpec(
        name=name or fn.__name__,
        description=description,
        input_model=model,
        handler=fn,
        context_param=context_param,
        module=fn.__module__,
        runs_in_loop=runs_in_loop,
    )


BUILTIN_MODULES = [
    "dsagent.tools.ask",
    "dsagent.tools.profile",
    "dsagent.tools.task",
    "dsagent.tools.engineer",
    "dsagent.tools.train",
    "dsagent.tools.tune",
    "dsagent.tools.ensemble",
    "dsagent.tools.evaluate",
    "dsagent.tools.explain",
    "dsagent.tools.notebook",
    "dsagent.tools.report",
    "dsagent.tools.monitor",
    "dsagent.tools.run_python",
    "dsagent.tools.unsupervised_tools",
    "dsagent.tools.forecast.tools",
    "dsagent.tools.ranking.tools",
]


def plugin_modules() -> list[str]:
    """The built-in tool modules, then every other module of the `dsagent.tools` entry-point group."""
    from importlib.metadata import entry_points

    modules = [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
    return BUILTIN_MODULES + [m for m in dict.fromkeys(modules) if m not in BUILTIN_MODULES]


def load_plugins() -> dict[str, ToolSpec]:
    """Import every module of the `dsagent.tools` entry-point group (built-ins included).

    Falls back to the built-in list when the package is not installed (running from a checkout).
    """
    import importlib

    global _LOADED
    for module in plugin_modules():
        if module in BUILTIN_MODULES:
            importlib.import_module(module)  # a broken built-in is a bug: fail loudly
            continue
        try:
            importlib.import_module(module)
        except Exception as exc:  # a broken third-party plugin must not take every tool down
            import warnings

            warnings.warn(f"dsagent: skipping tool plugin {module}: {type(exc).__name__}: {exc}", stacklevel=2)
    _LOADED = True
    return dict(_REGISTRY)


def mark_loaded() -> None:
    """Serve what has registered so far; never import plugins again (the worker with a fixed list)."""
    global _LOADED
    _LOADED = True



def all_tools() -> dict[str, ToolSpec]:
    """Every installed tool (importing one tool module alone must not hide the others)."""
    if not _LOADED:
        load_plugins()
    return dict(_REGISTRY)


def agent_tools() -> dict[str, Any]:
    """Every installed tool as the agent process needs it (name, description, argument schema), read
    from the catalogue the last import wrote when nothing changed since, without importing the tool
    modules and their ML libraries (tools/tool_catalogue.py); the ToolSpecs when they are imported
    here already. The worker, which runs them, imports them (all_tools)."""
    if _LOADED:
        return dict(_REGISTRY)
    from dsagent.tools.tool_catalogue import catalogued_tools

    return catalogued_tools(plugin_modules(), load_plugins, _REGISTRY)


def package_of(module: str) -> str:
    """The installed distribution that provides a module (its top-level import package), or "?"."""
    return (_distributions().get(module.split(".")[0]) or ["?"])[0]


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()  # scans every installed distribution: once per process


def tool_packages() -> dict[str, str]:
    """Every installed tool's name -> the distribution that provides it (a persona's `plugin:` entries)."""
    return {name: package_of(spec.module) for name, spec in agent_tools().items()}


def get_tool(name: str) -> ToolSpec:
    tools = all_tools()
    if name not in tools:
        raise KeyError(name)
    return tools[name]


def format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e.get("loc", ())) or "(arguments)"
        parts.append(f"{loc}: {e.get('msg')}")
    return "invalid arguments: " + "; ".join(parts)


def compact_json(obj: Any, limit: int = 6000) -> str:
    """The model-facing text of a summary, bounded so one result cannot flood the context."""
    text = obj if isinstance(obj, str) else json.dumps(obj, default=str, separators=(",", ":"))
    if len(text) > limit:
        text = text[:limit] + f"... [truncated {len(text) - limit} chars; full record in artifacts]"
    return text


def read_json(path: Path, default: Any = None) -> Any:
    """A JSON file the session wrote, or `default` while it does not exist yet."""
    return json.loads(path.read_text()) if path.exists() else default


def artifact_path(ctx: ToolContext, relative: str) -> Path:
    path = (ctx.artifacts_dir / relative).resolve()
    if ctx.artifacts_dir.resolve() not in path.parents and path != ctx.artifacts_dir.resolve():
        raise ToolError(f"path {relative!r} leaves the session's artifacts directory; use a relative name")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
