"""Personas: a markdown file with YAML front matter -> system prompt, allowed tools, model.

The file shape is the one Claude Code uses for subagents (front matter `name`, `description`,
`tools`, `model`; the body is the system prompt), so a persona can be dropped into
`.claude/agents/`. In Claude Code our tools arrive through the MCP server as
`mcp__dsagent__<tool>`; both spellings are accepted here, and `to_claude_code()` writes the
prefixed form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable

from dsagent.answers import BadInput

MCP_PREFIX = "mcp__dsagent__"
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)(.*)\Z", re.S)


@dataclass
class Persona:
    name: str
    description: str
    tools: list[str]
    model: str | None
    body: str
    path: str
    extra: dict = field(default_factory=dict)  # other front-matter keys (e.g. Claude Code's `color`)


def _packaged() -> dict[str, Path]:
    found = {}
    for entry in resources.files("dsagent.personas").iterdir():
        if entry.name.endswith(".md") and entry.is_file():
            found[entry.name[:-3]] = Path(str(entry))
    return found


def list_personas() -> list[str]:
    return sorted(_packaged())


def _looks_like_path(ref: str) -> bool:
    return ref.endswith(".md") or "/" in ref or "\\" in ref or Path(ref).expanduser().is_file()


def _known_tool_names() -> list[str]:
    # Imports the ML tool modules: only when the caller gave no names. load_plugins, not
    # all_tools: the latter stops early once any single tool module has been imported.
    from dsagent.tools.registry import load_plugins

    return list(load_plugins())


def _split_tools(value: object, source: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items = [t.strip() for t in value.split(",")]
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        items = [t.strip() for t in value]
    else:
        raise BadInput(f"{source}: front matter `tools` must be a comma-separated string or a list of tool names")
    return [t[len(MCP_PREFIX):] if t.startswith(MCP_PREFIX) else t for t in items if t]


PLUGIN_PREFIX = "plugin:"  # `plugin:<distribution>`: every tool that package provides; `plugin:*`: every plugin's


def _normalise(package: str) -> str:
    return re.sub(r"[-_.]+", "-", package).lower()  # PEP 503: dsagent_knn, dsagent-knn and DSAgent.KNN are one name


def _expand_plugins(tools: list[str], known: list[str], source: str) -> list[str]:
    """Replace `plugin:` entries by the installed tools they name (only those in `known`)."""
    if not any(t.startswith(PLUGIN_PREFIX) for t in tools):
        return tools  # no registry lookup for the usual persona
    from dsagent.tools.registry import tool_packages

    packages = {name: _normalise(pkg) for name, pkg in tool_packages().items() if name in known}
    plugins = sorted({p for p in packages.values() if p != "dsagent"})
    out: list[str] = []
    for entry in tools:
        if not entry.startswith(PLUGIN_PREFIX):
            out.append(entry)
            continue
        want = _normalise(entry[len(PLUGIN_PREFIX):].strip())
        matched = [n for n, p in packages.items() if (p != "dsagent" if want == "*" else p == want)]
        if not matched and want != "*":  # the wildcard may match nothing: no plugin installed yet
            raise BadInput(f"{source}: {entry} names no installed package that provides tools; "
                           f"plugin packages with tools: {', '.join(plugins) or 'none installed'}")
        out += sorted(matched)
    return out


def parse_persona(text: str, source: str, known_tools: Iterable[str] | None = None) -> Persona:
    import yaml

    match = _FRONT_MATTER.match(text.lstrip("\ufeff"))
    if not match:
        raise BadInput(f"{source}: a persona starts with YAML front matter between '---' lines (name, description, tools, model)")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise BadInput(f"{source}: front matter is not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise BadInput(f"{source}: front matter must be a mapping of keys to values")
    missing = [k for k in ("name", "description") if not isinstance(meta.get(k), str) or not meta[k].strip()]
    if missing:
        raise BadInput(f"{source}: front matter needs {' and '.join(missing)}")
    body = match.group(2).strip()
    if not body:
        raise BadInput(f"{source}: the persona has no body; write its instructions below the front matter")
    known = list(known_tools) if known_tools is not None else _known_tool_names()
    tools = _split_tools(meta.get("tools"), source)
    if tools is None:  # Claude Code's rule: no `tools` line means every tool
        tools = sorted(known)
    tools = _expand_plugins(tools, known, source)
    unknown = [t for t in tools if t not in known]
    if unknown:
        raise BadInput(
            f"{source}: unknown tool(s) in front matter: {', '.join(unknown)}; known tools: {', '.join(sorted(known))}"
        )
    model = meta.get("model")
    if model is not None and not isinstance(model, str):
        raise BadInput(f"{source}: front matter `model` must be a Claude model ID or alias such as 'sonnet'")
    extra = {k: v for k, v in meta.items() if k not in ("name", "description", "tools", "model")}
    return Persona(
        name=meta["name"].strip(),
        description=" ".join(meta["description"].split()),
        tools=list(dict.fromkeys(tools)),
        model=model.strip() if model else None,
        body=body,
        path=source,
        extra=extra,
    )


def load_persona(name_or_path: str, known_tools: Iterable[str] | None = None) -> Persona:
    """A packaged persona by NAME (personas/<name>.md) or any persona file by PATH.

    `known_tools`: the tool names that may appear in `tools:`. Pass them when you have them;
    otherwise the tool registry is loaded (which imports the ML libraries).
    """
    ref = str(name_or_path).strip()
    packaged = _packaged()
    if ref in packaged and not Path(ref).is_file():
        path = packaged[ref]
    elif _looks_like_path(ref):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise BadInput(f"persona file {path} not found; pass a persona name ({', '.join(sorted(packaged))}) or a .md path")
    else:
        raise BadInput(f"unknown persona {ref!r}; available: {', '.join(sorted(packaged))}, or pass a path to a .md file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"persona file {path} cannot be read ({exc})") from None
    return parse_persona(text, str(path), known_tools)


# A Claude Code subagent has no ask_user tool and cannot reach the person: its questions go back
# to its parent in its reply. Said once at the top of the body, and every mention of the tool in
# the persona's workflow is reworded, so the subagent is never told to call a tool it lacks.
SUBAGENT_ASKING = (
    "**Asking questions.** You run as a Claude Code subagent: you have no `ask_user` tool and cannot talk to the "
    "person. When an answer would change the work, ask through your parent: end your turn with the questions, "
    "each with its answers key, why it matters and your default, and the parent asks the person and calls you "
    "again with the answers. When a dsagent task pauses with needs_input, relay its questions the same way and "
    "pass the answers to `answer_questions`.\n\n")
_ASK_USER_STEP = re.compile(r"`ask_user`( once)?")


def _subagent_body(body: str) -> str:
    body = _ASK_USER_STEP.sub(lambda m: "ask your parent" + (m.group(1) or ""), body)
    return SUBAGENT_ASKING + body


def to_claude_code(persona: Persona) -> str:
    """The persona as a Claude Code subagent file, tools spelled as the MCP server exposes them.

    ask_user is left out, and the body says to ask through the parent instead (see SUBAGENT_ASKING).
    """
    import yaml

    tools = ", ".join(MCP_PREFIX + t for t in persona.tools if t != "ask_user")
    meta = {"name": persona.name, "description": persona.description, "tools": tools}
    if persona.model:
        meta["model"] = persona.model
    meta.update(persona.extra)
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000).strip()
    return f"---\n{front}\n---\n\n{_subagent_body(persona.body)}\n"
