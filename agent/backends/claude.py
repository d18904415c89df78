"""The Claude backend: the Messages API with tool use, streamed. The only module that imports
`anthropic`.

One `stream_turn` call is one assistant turn as the loop sees it, which may take several API
requests: a `pause_turn` is continued, an output cut at `max_tokens` is continued once (a
truncated tool call is dropped, never executed), a context-window overflow is retried once with
older tool results elided, and a stream that fails before it yielded anything is retried once
(the SDK's own retries already cover failures before the stream starts). Anything still failing
raises BackendError with a one-line message.

Context discipline: tool results reach the model as their compact `content`, wrapped in
<data> tags the system prompt declares to be data, never instructions; only the last
`keep_full_results` long results are sent in full, older ones become a pointer to their record
under artifacts/.

Prompt caching: breakpoints on the last tool, on the persona block of the system prompt and on
the last conversation block. The per-turn status (time left) goes after that last breakpoint
so it does not invalidate the cached prefix.

The conversation's conversion to messages is agent/backends/claude_messages.py (no SDK there).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import anthropic
import httpx2

from dsagent.loop import LoopState, ToolCall, Turn
from dsagent.backends.claude_messages import DATA_RULES, alternating, session_context, to_messages
from dsagent.backends.config import resolve_model
from dsagent.backends.errors import BackendError
from dsagent.persona import Persona
from dsagent.tools.registry import ToolSpec

CACHE = {"type": "ephemeral"}
MAX_PAUSE_CONTINUATIONS = 5
MAX_TOKENS_CAP = 32_000


@dataclass
class _Segment:
    """What one API request produced."""

    blocks: list[dict[str, Any]] = field(default_factory=list)  # complete blocks, replayable
    stop_reason: str | None = None
    stop_details: dict[str, Any] | None = None
    dropped_tools: list[str] = field(default_factory=list)  # tool_use blocks cut off mid-arguments
    malformed: dict[str, str] = field(default_factory=dict)  # tool_use id -> why its arguments are unusable
    usage: dict[str, int] = field(default_factory=dict)


class _ContextExceeded(Exception):
    pass


class _StreamCut(Exception):
    """The stream ended without the message's final events."""


class _StreamFailed(Exception):
    """A stream broke after the response started; `yielded` says whether text reached the UI."""

    def __init__(self, cause: BaseException, yielded: bool):
        super().__init__(str(cause))
        self.cause = cause
        self.yielded = yielded


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _empty_usage() -> dict[str, int]:
    return {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0}


class ClaudeBackend:
    name = "claude"

    def __init__(
        self,
        model: str | None = None,
        *,
        persona: Persona | str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 8192,
        max_retries: int = 4,
        timeout: float = 600.0,
        keep_full_results: int = 8,
        thinking: dict[str, Any] | None = None,
        stream_retry_delay: float = 1.0,
        client: Any = None,
    ):
        persona_model = persona.model if isinstance(persona, Persona) else None
        self.model = resolve_model(model, persona_model)
        self.persona = persona
        self.max_tokens = max_tokens
        self.keep_full_results = keep_full_results
        self.thinking = thinking
        self.stream_retry_delay = stream_retry_delay
        self._pending_notes: list[str] = []  # told to the model at the start of the next request
        self.notices: list[str] = []  # what the last turn had to tell the user (also in its text)
        self.client = client or _make_client(api_key, base_url, max_retries, timeout)

    # -- the request ---------------------------------------------------------------------
    def tool_params(self, tools: list[ToolSpec]) -> list[dict[str, Any]]:
        params = [spec.to_anthropic() for spec in tools]
        if params:
            params[-1] = {**params[-1], "cache_control": CACHE}
        return params

    def system_blocks(self, state: LoopState | None) -> list[dict[str, Any]]:
        if isinstance(self.persona, Persona):
            persona_text = self.persona.body
        else:
            persona_text = self.persona or "You are a careful senior data scientist working with the dsagent tools."
        blocks = [{"type": "text", "text": f"{persona_text}\n\n{DATA_RULES}", "cache_control": CACHE}]
        if state is not None:
            blocks.append({"type": "text", "text": session_context(state)})
        return blocks

    def build_messages(self, conversation: list[dict[str, Any]], state: LoopState | None, keep: int) -> list[dict[str, Any]]:
        messages = to_messages(conversation, keep_full=keep, model=self.model)
        status = []
        if state is not None:
            status.append(
                f"time left: {max(0, int(state.seconds_left()))} s of {int(state.time_budget)} s; model turn {state.steps}"
            )
        status.extend(self._pending_notes)
        last_user = next((m for m in reversed(messages) if m["role"] == "user"), None)
        if last_user is not None:
            last_user["content"][-1] = {**last_user["content"][-1], "cache_control": CACHE}
            if status:
                last_user["content"].append({"type": "text", "text": "<status>\n" + "\n".join(status) + "\n</status>"})
        return messages

    # -- one turn ------------------------------------------------------------------------
    def stream_turn(self, conversation: list[dict[str, Any]], tools: list[ToolSpec], state: LoopState) -> Iterator[str]:
        tool_params = self.tool_params(tools)
        system = self.system_blocks(state)
        keep = self.keep_full_results
        max_tokens = self.max_tokens
        usage = _empty_usage()
        blocks: list[dict[str, Any]] = []  # the whole turn's content, across continuations
        tail: list[dict[str, Any]] = []  # continuation messages after the conversation
        texts: list[str] = []  # everything shown to the user: text deltas and notices
        malformed: dict[str, str] = {}  # tool_use id -> why its arguments could not be used
        self.notices = []
        context_retried = cut_continued = False
        pauses = 0
        while True:
            request = {"model": self.model, "max_tokens": max_tokens, "system": system,
                       "messages": alternating(self.build_messages(conversation, state, keep) + tail)}
            if tool_params:
                request["tools"] = tool_params
            if self.thinking:
                request["thinking"] = self.thinking
            try:
                seg = yield from self._stream_request(request, state, texts)
            except _ContextExceeded:
                if context_retried:
                    raise BackendError(
                        "the conversation no longer fits in the model's context window even with old tool results "
                        f"elided; start a new session or use a model with a larger window (now {self.model})",
                        kind="context_window",
                    ) from None
                context_retried, keep = True, 1
                continue
            for key, value in seg.usage.items():
                usage[key] += value
            self._pending_notes = []
            blocks.extend(seg.blocks)
            malformed.update(seg.malformed)
            reason = seg.stop_reason or "end_turn"
            calls = [b for b in blocks if b["type"] == "tool_use"]

            if reason == "model_context_window_exceeded":
                if context_retried:
                    raise BackendError(
                        f"the model ran out of context window (model {self.model}) even with old tool results "
                        "elided; start a new session or use a model with a larger window",
                        kind="context_window",
                    )
                context_retried, keep, blocks, tail = True, 1, [], []
                yield self._notice(texts, "context window full: retrying with older tool results elided")
                continue

            if reason == "pause_turn" and pauses < MAX_PAUSE_CONTINUATIONS:
                # The API paused a long turn: send the content back unchanged and it carries on.
                pauses += 1
                tail = [{"role": "assistant", "content": list(blocks)}]
                continue

            if reason == "refusal":
                detail = seg.stop_details or {}
                why = detail.get("explanation") or detail.get("category") or "no reason given"
                yield self._notice(texts, f"Claude declined to continue this request ({_one_line(why, 160)}). "
                                          "Nothing from that reply was executed; rephrase the goal, or use --backend offline.")
                kept = [b for b in blocks if b["type"] != "tool_use"]
                return Turn(text="".join(texts), tool_calls=[], stop_reason="refusal", usage=usage, raw=self._raw(kept))

            if reason == "max_tokens":
                what = (f"the call to {', '.join(seg.dropped_tools)} was cut off and was not executed"
                        if seg.dropped_tools else "the reply was cut off")
                if calls:
                    # Complete calls still run (their results must follow them); the model hears
                    # about the dropped one at the start of the next request.
                    if seg.dropped_tools:
                        self._pending_notes.append(f"Your last reply hit the output limit: {what}. Make it again if still needed.")
                    yield self._notice(texts, f"output limit reached: {what}")
                elif not cut_continued:
                    cut_continued = True
                    max_tokens = min(max_tokens * 2, MAX_TOKENS_CAP)
                    yield self._notice(texts, f"output limit reached: {what}; asking Claude to continue")
                    ask = (f"Your reply hit the output limit and {what}. Continue; if you still need that tool, call it "
                           "again with shorter arguments." if seg.dropped_tools
                           else "Your reply hit the output limit. Continue from where you stopped.")
                    tail = ([{"role": "assistant", "content": list(blocks)}] if blocks else []) + [
                        {"role": "user", "content": [{"type": "text", "text": ask}]}
                    ]
                    continue
                else:
                    yield self._notice(texts, f"output limit reached again: {what}")

            tool_calls = [ToolCall(id=b["id"], name=b["name"], arguments=b["input"], error=malformed.get(b["id"]))
                          for b in calls]
            return Turn(text="".join(texts), tool_calls=tool_calls, stop_reason=reason, usage=usage, raw=self._raw(blocks))

    def _notice(self, texts: list[str], message: str) -> str:
        """A notice for the person, streamed and kept in the turn's text (never replayed to the model)."""
        self.notices.append(message)
        line = f"\n[dsagent] {message}\n"
        texts.append(line)
        return line

    def _raw(self, blocks: list[dict[str, Any]]) -> dict[str, Any] | None:
        # The model is kept so thinking blocks (bound to the model that wrote them) are replayed only to it.
        return {"model": self.model, "content": blocks} if blocks else None

    # -- one API request, streamed ------------------------------------------------------
    def _stream_request(self, request: dict[str, Any], state: LoopState | None, texts: list[str]):
        """Yields text deltas; returns a _Segment. One application-level retry when the stream
        breaks before anything was yielded."""
        for attempt in (0, 1):
            try:
                return (yield from self._stream_once(request, texts))
            except _StreamFailed as failed:
                if failed.yielded or attempt == 1 or not _retryable(failed.cause):
                    raise self._error(failed.cause, state, after_stream=True) from None
                time.sleep(self.stream_retry_delay)
            except anthropic.BadRequestError as exc:
                if _is_context_overflow(exc):
                    raise _ContextExceeded() from None
                raise self._error(exc, state) from None
            except (anthropic.APIError, httpx2.HTTPError) as exc:
                raise self._error(exc, state) from None
        raise AssertionError("unreachable")

    def _stream_once(self, request: dict[str, Any], texts: list[str]):
        seg = _Segment()
        open_blocks: dict[int, dict[str, Any]] = {}
        json_parts: dict[int, list[str]] = {}
        yielded = False
        usage = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        stream = self.client.messages.create(**request, stream=True)
        try:
            with stream:
                for event in stream:
                    kind = event.type
                    if kind == "message_start":
                        _merge_usage(usage, event.message.usage)
                    elif kind == "content_block_start":
                        block = event.content_block.model_dump(exclude_none=True)
                        if block["type"] == "tool_use":
                            block["input"] = block.get("input") or {}
                            json_parts[event.index] = []
                        elif block["type"] == "text" and block.get("text"):
                            texts.append(block["text"])
                            yielded = True
                            yield block["text"]
                        open_blocks[event.index] = block
                    elif kind == "content_block_delta":
                        block = open_blocks.get(event.index)
                        delta = event.delta
                        if block is None:
                            continue
                        if delta.type == "text_delta":
                            block["text"] = block.get("text", "") + delta.text
                            texts.append(delta.text)
                            yielded = True
                            yield delta.text
                        elif delta.type == "input_json_delta":
                            json_parts[event.index].append(delta.partial_json)
                        elif delta.type == "thinking_delta":
                            block["thinking"] = block.get("thinking", "") + delta.thinking
                        elif delta.type == "signature_delta":
                            block["signature"] = delta.signature
                        elif delta.type == "citations_delta":
                            block.setdefault("citations", []).append(delta.citation.model_dump(exclude_none=True))
                    elif kind == "content_block_stop":
                        block = open_blocks.pop(event.index, None)
                        if block is None:
                            continue
                        if block["type"] == "tool_use":
                            parsed, problem = _parse_arguments(block, json_parts.pop(event.index, []))
                            if problem is not None:
                                # Kept (with an empty input, so it replays as a valid block) and
                                # answered with an error result; under max_tokens it is dropped below.
                                seg.malformed[block["id"]] = problem
                            block["input"] = parsed
                        seg.blocks.append(block)
                    elif kind == "message_delta":
                        seg.stop_reason = event.delta.stop_reason
                        details = getattr(event.delta, "stop_details", None)
                        seg.stop_details = details.model_dump(exclude_none=True) if details is not None else None
                        _merge_usage(usage, event.usage)
        except (anthropic.APIStatusError, anthropic.APIConnectionError, httpx2.HTTPError) as exc:
            # An SSE `error` event or a broken connection after the response began.
            raise _StreamFailed(exc, yielded) from exc
        seg.usage = {
            "input_tokens": usage["input_tokens"],
            "output_tokens": usage["output_tokens"],
            "cache_read_tokens": usage["cache_read_input_tokens"],
            "cache_write_tokens": usage["cache_creation_input_tokens"],
        }
        if seg.stop_reason is None:
            # The body ended without message_delta: the connection dropped, not the model stopping.
            raise _StreamFailed(_StreamCut("the response stream ended before the message was complete"), yielded)
        for index in sorted(open_blocks):  # never closed: incomplete, so a tool call among them is dropped
            block = open_blocks[index]
            if block["type"] == "tool_use":
                seg.dropped_tools.append(block["name"])
            elif block["type"] == "text" and block.get("text"):
                seg.blocks.append(block)
        if seg.stop_reason == "max_tokens" and seg.malformed:
            # Arguments that do not parse at the output limit were cut off, not malformed.
            seg.dropped_tools.extend(b["name"] for b in seg.blocks if b.get("id") in seg.malformed)
            seg.blocks = [b for b in seg.blocks if b.get("id") not in seg.malformed]
            seg.malformed = {}
        if seg.stop_reason == "max_tokens" and not seg.dropped_tools and seg.blocks and seg.blocks[-1]["type"] == "tool_use":
            # The limit hit while (or right after) this call was written: even if its JSON parses,
            # it may be missing arguments. Never execute it.
            seg.dropped_tools.append(seg.blocks.pop()["name"])
        return seg

    def _error(self, exc: BaseException, state: LoopState | None, after_stream: bool = False) -> BackendError:
        resume = f"; resume with --resume {state.session.id}" if state is not None else ""
        retries = getattr(self.client, "max_retries", 0)
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            etype = exc.type or ""
            detail = _one_line(exc.api_message or exc.message or "", 160)
            if isinstance(exc, (anthropic.AuthenticationError, anthropic.PermissionDeniedError)):
                return BackendError(f"Claude API rejected the credentials ({status} {etype}): set a valid ANTHROPIC_API_KEY, "
                                    "or run with --backend offline", kind="auth")
            if isinstance(exc, anthropic.NotFoundError):
                return BackendError(f"Claude API: {detail or 'not found'} ({status}); check --model / DSAGENT_MODEL "
                                    f"(now {self.model})", kind="bad_request")
            if status == 429 or etype == "rate_limit_error":
                return BackendError(f"Claude API rate limit (429) persisted after {retries} retries: {detail}{resume} "
                                    "in a minute", kind="rate_limit", retryable=True)
            if status == 529 or etype == "overloaded_error":
                where = "mid-stream" if after_stream else f"after {retries} retries"
                return BackendError(f"Claude API overloaded (529) {where}: {detail}{resume} later", kind="overloaded",
                                    retryable=True)
            if status >= 500 or etype == "api_error":
                return BackendError(f"Claude API server error ({status} {etype}) after retries: {detail}{resume} later",
                                    kind="server", retryable=True)
            return BackendError(f"Claude API refused the request ({status} {etype}): {detail}", kind="bad_request")
        if isinstance(exc, (anthropic.APIConnectionError, httpx2.HTTPError, _StreamCut)):
            return BackendError(f"cannot reach the Claude API at {self.client.base_url} ({_one_line(exc, 120)}); check "
                                f"the network or ANTHROPIC_BASE_URL{resume}", kind="connection", retryable=True)
        return BackendError(f"Claude API error: {_one_line(exc, 200)}", kind="api_error")


# -- helpers ---------------------------------------------------------------------------

NO_CREDENTIALS = "no Claude credentials: set ANTHROPIC_API_KEY, or run with --backend offline"


def _make_client(api_key: str | None, base_url: str | None, max_retries: int, timeout: float) -> "anthropic.Anthropic":
    # base_url=None lets the SDK read ANTHROPIC_BASE_URL (a proxy or gateway); api_key=None lets
    # it read ANTHROPIC_API_KEY or a profile. Fail here, not at the first request, when none is found.
    try:
        client = anthropic.Anthropic(api_key=api_key, base_url=base_url, max_retries=max_retries, timeout=timeout)
    except anthropic.AnthropicError as exc:
        raise BackendError(f"{NO_CREDENTIALS} ({_one_line(exc, 120)})", kind="auth") from None
    if client.api_key is None and client.auth_token is None and getattr(client, "credentials", None) is None:
        raise BackendError(NO_CREDENTIALS, kind="auth")
    return client


def _merge_usage(usage: dict[str, int], reported: Any) -> None:
    """message_start and message_delta report cumulative counts: the latest non-null wins."""
    if reported is None:
        return
    for key in usage:
        value = getattr(reported, key, None)
        if isinstance(value, int):
            usage[key] = value


def _parse_arguments(block: dict[str, Any], parts: list[str]) -> tuple[dict[str, Any], str | None]:
    """The call's arguments, or {} and what was wrong with them (told to the model, with the
    first bytes received, so it can make the call again)."""
    raw = "".join(parts)
    text = raw.strip()
    if not text:
        value: Any = block.get("input") or {}
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            return {}, (f"the arguments of this {block.get('name')} call were not valid JSON ({exc.msg} at character "
                        f"{exc.pos}); first bytes received: {raw[:120]!r}. Nothing was executed; make the call again "
                        "with a JSON object of arguments")
    if not isinstance(value, dict):
        return {}, (f"the arguments of this {block.get('name')} call must be a JSON object, not a "
                    f"{type(value).__name__}; first bytes received: {(raw or json.dumps(value))[:120]!r}. Nothing was "
                    "executed; make the call again with a JSON object of arguments")
    return value, None


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, anthropic.APIStatusError):
        return (exc.type or "") in ("overloaded_error", "api_error", "rate_limit_error", "") or exc.status_code >= 500
    return isinstance(exc, (anthropic.APIConnectionError, httpx2.HTTPError, _StreamCut))


def _is_context_overflow(exc: anthropic.BadRequestError) -> bool:
    text = f"{exc.api_message or ''} {exc.message}".lower()
    return "prompt is too long" in text or "context window" in text or "context_length" in text
