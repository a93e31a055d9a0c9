"""OpenAI chat completions -> Anthropic messages, and the gateway's errors in Anthropic's shape.

Round trip: a recorded Anthropic answer, read by the existing Anthropic adapter into an OpenAI
completion and written back by the dialect, must give the client what Anthropic said.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.providers.anthropic import errors as anthropic_errors
from backends.providers.anthropic.response import completion
from backends.providers.base import OpenAIError, ProviderError
from gateway.dialects.anthropic_messages import anthropic_error, anthropic_error_event, from_openai_completion
from tests.dialects.support import content_summary
from tests.fakes import recordings

ANTHROPIC_ANSWERS = [
    ("messages_text", None),
    ("messages_max_tokens", None),
    ("messages_image_url_input", None),
    ("messages_parallel_tool_use", 1),
    ("messages_parallel_tool_use", 2),
    ("messages_thinking", 1),
    ("messages_thinking", 2),
]


def openai_answer(provider: str, name: str, index: int | None = None) -> dict:
    return json.loads(recordings.response(provider, name, index))


@pytest.mark.parametrize(("name", "index"), ANTHROPIC_ANSWERS)
def test_recorded_anthropic_answers_survive_the_round_trip(name, index):
    original = json.loads(recordings.response("anthropic", name, index))
    chat = json.loads(completion({"model": "claude-sonnet-4-0"}, recordings.response("anthropic", name, index)))
    message = from_openai_completion(chat, "claude-sonnet-4-0")
    assert content_summary(message) == content_summary(original)
    assert message["stop_reason"] == original["stop_reason"]
    assert message["id"] == original["id"]
    for key in ("input_tokens", "output_tokens", "cache_read_input_tokens"):
        assert message["usage"][key] == original["usage"][key]
    # Signed thinking survives too: the client can send it back to an Anthropic backend.
    signatures = [block.get("signature") for block in original["content"] if block["type"] == "thinking"]
    assert [block.get("signature") for block in message["content"] if block["type"] == "thinking"] == signatures


def test_openai_text_answer():
    answer = openai_answer("openai", "chat_text")
    message = from_openai_completion(answer, "my-alias")
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "my-alias"
    assert message["id"].startswith("msg_")
    assert content_summary(message) == [("text", answer["choices"][0]["message"]["content"])]
    assert message["stop_reason"] == "end_turn"
    assert message["usage"]["input_tokens"] == answer["usage"]["prompt_tokens"] - (
        answer["usage"].get("prompt_tokens_details") or {}
    ).get("cached_tokens", 0)
    assert message["usage"]["output_tokens"] == answer["usage"]["completion_tokens"]


def test_openai_parallel_tool_calls_become_tool_use_blocks():
    answer = openai_answer("openai", "chat_parallel_tool_calls", 1)
    calls = answer["choices"][0]["message"]["tool_calls"]
    assert len(calls) >= 2
    message = from_openai_completion(answer, "gpt-4o")
    tools = [block for block in message["content"] if block["type"] == "tool_use"]
    assert [(block["id"], block["name"]) for block in tools] == [(c["id"], c["function"]["name"]) for c in calls]
    assert [block["input"] for block in tools] == [json.loads(c["function"]["arguments"]) for c in calls]
    assert message["stop_reason"] == "tool_use"


def test_length_and_refusal():
    assert from_openai_completion(openai_answer("openai", "chat_max_tokens_length"), "m")["stop_reason"] == "max_tokens"
    refusal = from_openai_completion(openai_answer("openai", "chat_refusal"), "m")
    assert refusal["content"] and refusal["content"][0]["type"] == "text"


def test_reasoning_content_becomes_a_thinking_block_first():
    answer = openai_answer("deepseek", "reasoner_nonstream")
    message = from_openai_completion(answer, "deepseek-reasoner")
    assert message["content"][0] == {
        "type": "thinking",
        "thinking": answer["choices"][0]["message"]["reasoning_content"],
        "signature": "",
    }
    assert message["content"][1]["type"] == "text"


def test_cached_tokens_are_cache_reads_not_input():
    answer = {
        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 60}},
    }
    usage = from_openai_completion(answer, "m")["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"], usage["output_tokens"]) == (40, 60, 5)


def test_broken_tool_arguments_are_kept_not_lost():
    answer = {
        "choices": [
            {
                "message": {"tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{oops"}}]},
                "finish_reason": "stop",
            }
        ]
    }
    message = from_openai_completion(answer, "m")
    assert message["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {"_arguments": "{oops"}}]
    assert message["stop_reason"] == "tool_use"


@pytest.mark.parametrize("answer", [None, [], {}, {"choices": []}, {"choices": [{}]}, {"choices": [{"message": 5}]}])
def test_an_answer_without_a_message_is_a_provider_error(answer):
    with pytest.raises(ProviderError):
        from_openai_completion(answer, "m")


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(
                st.sampled_from(["choices", "message", "content", "tool_calls", "function", "usage", "id", "x"]),
                children,
                max_size=4,
            )
        ),
        max_leaves=12,
    )
)
def test_any_answer_is_a_message_or_a_provider_error(answer):
    try:
        message = from_openai_completion(answer, "m")
    except ProviderError:
        return
    json.dumps(message)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
        (409, "invalid_request_error"),
    ],
)
def test_errors_take_anthropic_types_by_status(status, kind):
    body = json.loads(anthropic_error(status, OpenAIError(status, "nope", type="whatever", code="x")))
    assert body == {"type": "error", "error": {"type": kind, "message": "nope"}}


def test_recorded_anthropic_errors_come_back_as_they_were():
    for name, index in (("error_401_invalid_x_api_key", None), ("error_404_model_not_found", 1)):
        raw = recordings.response("anthropic", name, index)
        status = recordings.interactions("anthropic", name)[0]["response"]["status"]
        original = json.loads(raw)
        again = json.loads(anthropic_error(status, anthropic_errors.error(status, raw)))
        assert again["error"] == {"type": original["error"]["type"], "message": original["error"]["message"]}


def test_error_event_is_an_sse_error():
    frame = anthropic_error_event(OpenAIError(529, "busy"))
    assert frame.startswith(b"event: error\ndata: ") and frame.endswith(b"\n\n")
    assert json.loads(frame.split(b"data: ", 1)[1])["error"]["type"] == "overloaded_error"
