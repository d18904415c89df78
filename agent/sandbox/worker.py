"""The sandboxed worker process: reads tool requests on stdin, answers on a private pipe.

Started by dsagent.sandbox.runner.Worker with a clean environment, resource limits and its own process group
(inside bubblewrap when available). Before any tool code is imported, it applies the in-process
layers (Landlock, dropped capabilities, seccomp) described by DSAGENT_SANDBOX and reports
what took effect.
Tools see the truth in ctx.sandbox["layers"], whatever the parent sent.

DSAGENT_TOOL_MODULES (comma-separated module names), when set, makes the worker import exactly
those tool modules instead of every installed plugin: tests use it for tools that exist only in
tests/ (and to skip seconds of ML imports); a persona could use it to narrow the worker.
Protocol: one JSON object per line. Request {"id","tool","args","context"}; replies
{"type":"progress",...} zero or more times, then {"type":"result","ok":...}.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback


def _protocol_stream():
    # Keep the real stdout for the protocol and point fd 1 at stderr, so that prints from
    # tools and C libraries cannot corrupt the replies.
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(proto_fd, "w", buffering=1, encoding="utf-8")


def _apply_layers() -> dict:
    from dsagent.sandbox.inprocess import apply_in_process
    from dsagent.sandbox.layer import without_network

    layers = json.loads(os.environ.pop("DSAGENT_LAYERS", "{}"))
    spec = json.loads(os.environ.pop("DSAGENT_SANDBOX", "{}"))
    layers.update(apply_in_process(spec))
    if spec.get("tcp"):  # --cluster: say so, in the report the tools (run_python) read
        layers = without_network(layers, "TCP allowed to reach the Dask cluster (--cluster)")
    return layers


def main() -> None:
    layers = _apply_layers()
    out = _protocol_stream()

    def send(obj: dict) -> None:
        out.write(json.dumps(obj, default=str) + "\n")
        out.flush()

    from dsagent.tools import registry as registry
    from dsagent.tools.registry import ToolContext, ToolError, all_tools, compact_json, format_validation_error, get_tool
    from pydantic import ValidationError

    only = [m.strip() for m in os.environ.get("DSAGENT_TOOL_MODULES", "").split(",") if m.strip()]
    try:
        for module in only:
            importlib.import_module(module)
        if not only:
            all_tools()
    except Exception:  # one broken plugin must not take every tool down; worker.log has the cause
        traceback.print_exc()
    registry.mark_loaded()  # serve the tools that registered; never re-import them per call
    send({"type": "ready", "pid": os.getpid(), "layers": layers})
    summary_cap = int(os.environ.get("DSAGENT_SUMMARY_CHARS", "16000"))
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        rid = request.get("id")
        ctx = ToolContext.from_json(request["context"])
        ctx.sandbox = {**ctx.sandbox, "layers": layers}
        ctx.progress = lambda msg, frac=None: send({"type": "progress", "id": rid, "message": str(msg)[:300], "fraction": frac})
        try:
            spec = get_tool(request["tool"])
            output = spec.invoke(ctx, request.get("args") or {})
            payload = output.to_json()
            payload["summary"] = output.summary if len(compact_json(output.summary, 10**9)) <= summary_cap else compact_json(output.summary, summary_cap)
            send({"type": "result", "id": rid, "ok": True, "output": payload})
        except ToolError as exc:
            send({"type": "result", "id": rid, "ok": False, "error": str(exc), "kind": "tool_error"})
        except ValidationError as exc:
            send({"type": "result", "id": rid, "ok": False, "error": format_validation_error(exc), "kind": "invalid_arguments"})
        except MemoryError:
            send({"type": "result", "id": rid, "ok": False, "kind": "memory",
                  "error": "the tool ran out of memory (worker memory limit reached); try a smaller sample or raise --memory-mb"})
        except Exception as exc:  # any failure becomes an error result for the model, never a crash
            traceback.print_exc()
            send({"type": "result", "id": rid, "ok": False, "kind": "exception",
                  "error": f"{type(exc).__name__}: {str(exc)[:500]}"})


if __name__ == "__main__":
    main()
