"""A scripted stand-in for the Anthropic Messages API on 127.0.0.1, for the real SDK to talk to.

Queue replies with `push()`; each POST /v1/messages takes the next one and is recorded in
`requests` (headers and JSON body). Like the real API, a request that breaks one of the rules in
`request_error` gets a 400 invalid_request_error instead (and takes no reply from the queue), so a
request dsagent builds wrongly fails here as it would against the live API. Replies are built
with the helpers below: a streamed message (SSE) from a list of content blocks, an HTTP error
with retry-after, an error event mid-stream, or a connection cut.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # JSON body for non-streamed replies and errors
    events: list[tuple[str, dict[str, Any]]] | None = None  # SSE events, in order
    cut: bool = False  # close the connection after the events, without message_stop


def _chunks(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def message(
    content: list[dict[str, Any]],
    stop_reason: str | None = "end_turn",
    *,
    usage: dict[str, int] | None = None,
    stop_details: dict[str, Any] | None = None,
    model: str = "claude-sonnet-5-5",
    chunk: int = 7,
) -> Reply:
    """A streamed message. Content blocks: {"type": "text", "text"}, {"type": "tool_use", "id",
    "name", "input"}, {"type": "thinking", "thinking", "signature"}, and the test-only
    {"type": "partial_tool_use", "id", "name", "partial_json"}: a tool call cut off by max_tokens
    (the API still closes the block; its arguments are incomplete JSON)."""
    u = {"input_tokens": 100, "output_tokens": 20, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    u.update(usage or {})
    start_usage = {**u, "output_tokens": 1}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
        ("ping", {"type": "ping"}),
    ]
    for i, block in enumerate(content):
        kind = block["type"]
        if kind == "text":
            events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}}))
            for piece in _chunks(block["text"], chunk):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "text_delta", "text": piece}}))
        elif kind in ("tool_use", "partial_tool_use"):
            events.append(("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}))
            raw = block["partial_json"] if kind == "partial_tool_use" else json.dumps(block["input"])
            for piece in _chunks(raw, chunk):
                events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                       "delta": {"type": "input_json_delta", "partial_json": piece}}))
        elif kind == "thinking":
            events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "thinking_delta", "thinking": block["thinking"]}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "signature_delta", "signature": block["signature"]}}))
        else:
            raise ValueError(f"unknown block type {kind}")
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": None}
    if stop_details is not None:
        delta["stop_details"] = stop_details
    events.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": {
        "output_tokens": u["output_tokens"], "input_tokens": u["input_tokens"],
        "cache_creation_input_tokens": u["cache_creation_input_tokens"],
        "cache_read_input_tokens": u["cache_read_input_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return Reply(events=events)


def http_error(status: int, etype: str, msg: str = "", retry_after: float | None = None) -> Reply:
    headers = {"request-id": "req_fake"}
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return Reply(status=status, headers=headers,
                 body={"type": "error", "error": {"type": etype, "message": msg or etype}})


def error_mid_stream(before: list[dict[str, Any]] | None = None, etype: str = "overloaded_error") -> Reply:
    """message_start (and `before` blocks' events, unterminated), then an SSE error event."""
    events = message(before or [], stop_reason=None).events[:-2]  # drop message_delta/message_stop
    events.append(("error", {"type": "error", "error": {"type": etype, "message": "Overloaded"}}))
    return Reply(events=events)


def cut_connection(before: list[dict[str, Any]] | None = None) -> Reply:
    events = message(before or [], stop_reason=None).events[:-2]
    return Reply(events=events, cut=True)


MAX_CACHE_BREAKPOINTS = 4
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or [] if isinstance(b, dict)]


def _count_cache_control(node: Any) -> int:
    if isinstance(node, dict):
        return ("cache_control" in node) + sum(_count_cache_control(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_cache_control(v) for v in node)
    return 0


def request_error(body: dict[str, Any]) -> str | None:
    """The first rule of the Messages API this request breaks (worded like the API), or None."""
    for i, tool in enumerate(body.get("tools") or []):
        if "input_schema" not in tool:  # a server tool (type + name): not ours to check
            continue
        if not TOOL_NAME.match(str(tool.get("name", ""))):
            return f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if (tool.get("input_schema") or {}).get("type") != "object":
            return f"tools.{i}.custom.input_schema.type: Input should be 'object'"
    breakpoints = _count_cache_control([body.get("tools"), body.get("system"), body.get("messages")])
    if breakpoints > MAX_CACHE_BREAKPOINTS:
        return f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found {breakpoints}."
    system = body.get("system")
    if isinstance(system, list):
        for j, block in enumerate(system):
            if block.get("type") == "text" and not str(block.get("text", "")).strip():
                return f"system.{j}: text content blocks must contain non-whitespace text"
    messages = body.get("messages") or []
    for i, msg in enumerate(messages):
        role = msg.get("role")
        if i > 0 and role == messages[i - 1].get("role"):
            return f"messages.{i}: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row"
        blocks = _blocks(msg.get("content"))
        for j, block in enumerate(blocks):
            if block.get("type") == "text" and not str(block.get("text", "")).strip():
                return f"messages.{i}.content.{j}: text content blocks must contain non-whitespace text"
        if role == "assistant":
            ids = [b.get("id") for b in blocks if b.get("type") == "tool_use"]
            following = _blocks(messages[i + 1].get("content")) if i + 1 < len(messages) else []
            answered = {b.get("tool_use_id") for b in following if b.get("type") == "tool_result"}
            missing = [t for t in ids if t not in answered]
            if missing:
                return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                        f"{', '.join(map(str, missing))}. Each `tool_use` block must have a corresponding "
                        "`tool_result` block in the next message.")
        elif role == "user":
            previous = _blocks(messages[i - 1].get("content")) if i > 0 else []
            asked = {b.get("id") for b in previous if b.get("type") == "tool_use"}
            for j, block in enumerate(blocks):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in asked:
                    return (f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                            "`tool_use` block in the previous message.")
    return None


class FakeAnthropic:
    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.rejected: list[str] = []  # why each 400 was given, for a failing test to show
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    body = {"_unparsed": raw.decode("utf-8", "replace")}
                problem = request_error(body) if isinstance(body, dict) and self.path.startswith("/v1/messages") else None
                with fake._lock:
                    fake.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    if problem is not None:
                        fake.rejected.append(problem)
                        reply = http_error(400, "invalid_request_error", problem)
                    else:
                        reply = fake.script.popleft() if fake.script else http_error(500, "api_error", "fake script exhausted")
                fake._send(self, reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def push(self, *replies: Reply) -> "FakeAnthropic":
        self.script.extend(replies)
        return self

    def start(self) -> "FakeAnthropic":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if reply.events is None:
            payload = json.dumps(reply.body if reply.body is not None else {}).encode()
            handler.send_response(reply.status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            for k, v in reply.headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(payload)
            return
        handler.send_response(reply.status)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("connection", "close")
        for k, v in reply.headers.items():
            handler.send_header(k, v)
        handler.end_headers()
        for name, data in reply.events:
            handler.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            handler.wfile.flush()
        if reply.cut:
            handler.close_connection = True
