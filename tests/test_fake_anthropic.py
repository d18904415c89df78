"""The fake Messages API refuses what the real one refuses, so a request dsagent builds wrongly
fails in the tests as it would live. Each rule: one bad request through the real `anthropic`
client, answered with the API's 400 invalid_request_error."""

from __future__ import annotations

import copy

import anthropic
import pytest

from fake_anthropic import FakeAnthropic, message

SCHEMA = {"type": "object", "properties": {"metric": {"type": "string"}}}


def _good() -> dict:
    """A valid request: a tool round trip, then a user follow-up, 4 cache breakpoints."""
    cache = {"type": "ephemeral"}
    return {
        "model": "claude-sonnet-5-5",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "You are a data scientist.", "cache_control": cache}],
        "tools": [{"name": "train_models", "description": "train", "input_schema": SCHEMA, "cache_control": cache}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Predict churn", "cache_control": cache}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Training."},
                                              {"type": "tool_use", "id": "tu_1", "name": "train_models", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "ok",
                                          "cache_control": cache},
                                         {"type": "text", "text": "<status>time left: 10 s</status>"}]},
        ],
    }


def _non_alternating(r: dict) -> None:
    r["messages"].append({"role": "user", "content": [{"type": "text", "text": "and again"}]})


def _foreign_tool_result(r: dict) -> None:
    r["messages"][2]["content"].insert(1, {"type": "tool_result", "tool_use_id": "tu_other", "content": "?"})


def _unanswered_tool_use(r: dict) -> None:
    r["messages"][2]["content"] = [{"type": "text", "text": "never mind the tool"}]


def _five_breakpoints(r: dict) -> None:
    r["messages"][1]["content"][0]["cache_control"] = {"type": "ephemeral"}


def _bad_tool_name(r: dict) -> None:
    r["tools"][0]["name"] = "train models!"


def _schema_not_object(r: dict) -> None:
    r["tools"][0]["input_schema"] = {"type": "array", "items": {"type": "string"}}


def _empty_text(r: dict) -> None:
    r["messages"][0]["content"].append({"type": "text", "text": ""})


RULES = {
    "roles alternate": (_non_alternating, "roles must alternate"),
    "tool_result answers a tool_use": (_foreign_tool_result, "unexpected `tool_use_id`"),
    "tool_use gets its tool_result": (_unanswered_tool_use, "without `tool_result`"),
    "at most 4 cache breakpoints": (_five_breakpoints, "maximum of 4 blocks with cache_control"),
    "tool name pattern": (_bad_tool_name, "should match pattern"),
    "input_schema is an object": (_schema_not_object, "Input should be 'object'"),
    "no empty text blocks": (_empty_text, "non-whitespace text"),
}


@pytest.fixture(scope="module")
def fake():
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(fake):
    return anthropic.Anthropic(api_key="test", base_url=fake.url, max_retries=0)


def test_a_valid_request_is_served(fake, client):
    fake.push(message([{"type": "text", "text": "fine"}]))
    with client.messages.stream(**_good()) as stream:
        assert stream.get_final_message().content[0].text == "fine"


@pytest.mark.parametrize("rule", list(RULES))
def test_a_request_breaking_a_rule_is_refused(fake, client, rule):
    breaks, wording = RULES[rule]
    request = copy.deepcopy(_good())
    breaks(request)
    queued = len(fake.script)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(**request)
    body = info.value.body
    assert info.value.status_code == 400 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error" and wording in body["error"]["message"]
    assert len(fake.script) == queued  # a refused request takes no scripted reply
