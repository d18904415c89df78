"""Which Claude model to use and what its tokens cost: the one place both are kept.

Model precedence: `--model` > DSAGENT_MODEL > the persona's `model:` > DEFAULT_MODEL.
Prices are USD per million tokens, from Anthropic's published model pages (checked against
platform.claude.com when written; see README). Override or extend them with DSAGENT_PRICES:
a path to a JSON/YAML file, or inline JSON, mapping model -> {input, output, cache_write,
cache_read}. A model with no price reports its tokens and a null cost: a made-up price is
worse than none.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping

from dsagent.answers import BadInput

# The current Sonnet: the speed/quality balance an interactive tool loop wants, at a known price.
DEFAULT_MODEL = "claude-sonnet-5-5"

# Claude Code's aliases, so a persona file works in both places. "inherit" means "no opinion".
ALIASES = {
    "sonnet": "claude-sonnet-5-5",
    "opus": "claude-opus-5-5",
    "haiku": "claude-haiku-5-5",
}

PRICE_FIELDS = ("input", "output", "cache_write", "cache_read")


def _p(input: float, output: float, cache_write: float, cache_read: float) -> dict[str, float]:
    return {"input": input, "output": output, "cache_write": cache_write, "cache_read": cache_read}


# cache_write is the 5-minute rate: the only cache TTL this backend requests.
# Left out on purpose (cost null): claude-haiku-5-5 (tiered by prompt length), the *-5-2 models
# and anything retired, whose prices were not verified.
PRICES: dict[str, dict[str, float]] = {
    "claude-fable-5-1": _p(10, 50, 12.5, 0.25),
    "claude-mythos-5-1": _p(10, 50, 12.5, 0.25),
    "claude-fable-5": _p(10, 50, 12.5, 1.0),
    "claude-mythos-5": _p(10, 50, 12.5, 1.0),
    "claude-opus-5-5": _p(4, 20, 5, 0.20),
    "claude-opus-5": _p(5, 25, 6.25, 0.50),
    "claude-opus-4-8": _p(5, 25, 6.25, 0.50),
    "claude-opus-4-7": _p(5, 25, 6.25, 0.50),
    "claude-opus-4-6": _p(5, 25, 6.25, 0.50),
    "claude-opus-4-5": _p(5, 25, 6.25, 0.50),
    "claude-sonnet-5-5": _p(2, 10, 2.5, 0.20),
    "claude-sonnet-5": _p(2, 10, 2.5, 0.20),
    "claude-sonnet-4-6": _p(3, 15, 3.75, 0.30),
    "claude-sonnet-4-5": _p(3, 15, 3.75, 0.30),
    "claude-haiku-4-5": _p(1, 5, 1.25, 0.10),
}


def resolve_model(explicit: str | None = None, persona_model: str | None = None) -> str:
    for candidate in (explicit, os.environ.get("DSAGENT_MODEL"), persona_model):
        if candidate and candidate.strip() and candidate.strip().lower() != "inherit":
            name = candidate.strip()
            return ALIASES.get(name.lower(), name)
    return DEFAULT_MODEL


def canonical_model(model: str) -> str:
    """Price-table key for a model ID as the API, Bedrock, Vertex or Claude Code spell it."""
    name = model.strip().lower()
    name = ALIASES.get(name, name)
    name = re.sub(r"^(us\.|eu\.|apac\.|global\.)?anthropic\.", "", name)  # Bedrock
    name = re.sub(r"\[[^\]]*\]$", "", name)  # Claude Code's "[1m]"
    name = re.sub(r"(@\d{8}|-v\d+(:\d+)?)$", "", name)  # Vertex "@date", Bedrock "-v1:0"
    name = re.sub(r"-\d{8}$", "", name)  # dated snapshot -> its alias
    return name


def _load_overrides(spec: str) -> dict[str, Any]:
    text = spec.strip()
    if not text.startswith("{"):
        path = Path(text).expanduser()
        if not path.is_file():
            raise BadInput(f"DSAGENT_PRICES={spec!r}: no such file; give a JSON/YAML file or inline JSON")
        text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            import yaml

            data = yaml.safe_load(text)
        except Exception as exc:  # yaml's error types vary; the message is what matters
            raise BadInput(f"DSAGENT_PRICES is neither JSON nor YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise BadInput("DSAGENT_PRICES must map model IDs to {input, output, cache_write, cache_read}")
    return data


def price_table(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, float]]:
    env = os.environ if environ is None else environ
    table = {k: dict(v) for k, v in PRICES.items()}
    spec = env.get("DSAGENT_PRICES")
    if not spec:
        return table
    for model, row in _load_overrides(spec).items():
        if not isinstance(row, dict) or any(not isinstance(row.get(f), (int, float)) or row[f] < 0 for f in PRICE_FIELDS):
            raise BadInput(f"DSAGENT_PRICES: {model!r} needs non-negative numbers for {', '.join(PRICE_FIELDS)} (USD per million tokens)")
        table[canonical_model(str(model))] = {f: float(row[f]) for f in PRICE_FIELDS}
    return table


def price_for(model: str | None, environ: Mapping[str, str] | None = None) -> dict[str, float] | None:
    if not model:
        return None
    return price_table(environ).get(canonical_model(model))


def _get(usage: Any, key: str) -> float:
    value = usage.get(key, 0) if isinstance(usage, Mapping) else getattr(usage, key, 0)
    return float(value or 0)


def cost_usd(model: str | None, usage: Any, environ: Mapping[str, str] | None = None) -> float | None:
    """USD for `usage` (a dict or object with input_tokens, output_tokens, cache_read_tokens,
    cache_write_tokens) on `model`; None when the model has no known price."""
    price = price_for(model, environ)
    if price is None:
        return None
    total = (
        _get(usage, "input_tokens") * price["input"]
        + _get(usage, "output_tokens") * price["output"]
        + _get(usage, "cache_write_tokens") * price["cache_write"]
        + _get(usage, "cache_read_tokens") * price["cache_read"]
    ) / 1_000_000
    return round(total, 6)
