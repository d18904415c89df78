"""dsagent: an ML assistant with a data-scientist persona.

Python API (imported on first use, so `import dsagent` stays cheap):
    from dsagent import run_task, Assistant, as_anthropic_tool, ask_about
    from dsagent import predict, explain, monitor, retrain   # on a finished session
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["run_task", "Assistant", "as_anthropic_tool", "ask_about", "predict", "explain", "monitor", "retrain"]

if TYPE_CHECKING:
    from dsagent.api import Assistant, as_anthropic_tool, ask_about, explain, monitor, predict, retrain, run_task


def __getattr__(name: str) -> Any:
    if name in __all__:
        from dsagent import api

        return getattr(api, name)
    raise AttributeError(f"module 'dsagent' has no attribute {name!r}")
