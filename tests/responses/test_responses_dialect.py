"""The sans-IO Responses dialect: request translation and the chat -> Responses stream, with
what a client would notice when the upstream misbehaves."""

from __future__ import annotations

import json

import pytest

from backends.providers.base import OpenAIError
from gateway.dialects.openai_responses_answer import ResponseShell
from gateway.dialects.openai_responses_native import NativeResponsesStream
from gateway.dialects.openai_responses_request import ResponsesRequestError, to_openai_chat, validate_responses
from gateway.dialects.openai_responses_stream import ChatToResponsesStream
from tests.fakes import openai_responses as fake_responses
from tests.fakes import recordings


def events(frames: list[bytes]) -> list[dict]:
    parsed = []
    for frame in frames:
        for event in recordings.sse_frames(frame):
            name, _, data = event.decode().strip().partition("\ndata: ")
            value = json.loads(data)
            assert name == f"event: {value['type']}"
            parsed.append(value)
    return parsed


def translate(payload: dict, history=()) -> tuple[dict, set[str]]:
    dropped: set[str] = set()
    payload = {"model": "m", **payload}
    validate_responses(payload)
    return to_openai_chat(payload, list(history), dropped), dropped


def test_input_items_become_chat_messages():
    chat, dropped = translate(
        {
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Use metric units."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is in "},
                        {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
                    ],
                },
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
                {"type": "function_call", "call_id": "call_1", "name": "look", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "a cat"},
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
            "reasoning": {"effort": "low", "summary": "auto"},
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "tool_choice": {"type": "function", "name": "look"},
            "tools": [{"type": "function", "name": "look", "parameters": {"type": "object"}, "strict": True}],
            "truncation": "auto",
        }
    )

    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Use metric units."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in "},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
    ]
    assert chat["reasoning_effort"] == "low" and chat["response_format"] == {"type": "json_object"}
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "look"}}
    assert chat["tools"][0]["function"] == {"name": "look", "parameters": {"type": "object"}, "strict": True}
    assert dropped == {"input.reasoning", "reasoning.summary", "text.verbosity", "truncation"}


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"input": "x", "background": True}, "background"),
        ({"input": "x", "tools": [{"type": "file_search"}]}, "tools[0]"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
        ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}, "input[0].content[0]"),
        ({"input": "x", "tool_choice": {"type": "web_search"}}, "tool_choice"),
        ({"input": []}, "input"),
    ],
)
def test_what_a_chat_backend_cannot_carry_is_refused(payload, param):
    with pytest.raises(ResponsesRequestError) as refused:
        translate(payload)

    assert refused.value.param == param


def shell() -> ResponseShell:
    return ResponseShell({"model": "gpt-4o", "input": "hi"}, response_id="resp_test", created_at=1)


def test_a_stream_cut_before_its_end_fails_the_response():
    stream = ChatToResponsesStream(shell())
    body = recordings.response("openai", "chat_stream_text")
    frames = recordings.sse_frames(body)[:3]

    out = [frame for chunk in frames for frame in stream.feed(chunk)] + stream.close()

    kinds = [event["type"] for event in events(out)]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-2:] == ["error", "response.failed"]
    assert not stream.completed
    assert [event["sequence_number"] for event in events(out)] == list(range(len(kinds)))


def test_an_error_event_from_the_upstream_fails_the_response():
    stream = ChatToResponsesStream(shell())

    out = stream.feed(b'data: {"error": {"message": "overloaded", "code": 503}}\n\n') + stream.close()

    failed = events(out)[-1]
    assert failed["type"] == "response.failed" and failed["response"]["error"]["message"] == "overloaded"
    assert stream.close() == []


def test_the_relay_s_failure_ends_the_stream_once():
    stream = ChatToResponsesStream(shell())
    stream.feed(recordings.sse_frames(recordings.response("openai", "chat_stream_text"))[1])

    out = stream.error(OpenAIError(502, "backend sent nothing for 300 s", code="upstream_timeout"))

    assert [event["type"] for event in events(out)][-2:] == ["error", "response.failed"]
    assert events(out)[-2]["code"] == "upstream_timeout"
    assert stream.error(OpenAIError(502, "again")) == []


def test_length_finish_is_an_incomplete_response():
    body = recordings.response("openai", "chat_stream_max_tokens_length")
    stream = ChatToResponsesStream(shell())

    out = [frame for chunk in recordings.sse_frames(body) for frame in stream.feed(chunk)] + stream.close()

    last = events(out)[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_native_stream_is_relayed_unchanged_and_its_usage_read():
    frames = fake_responses.stream_frames()
    stream = NativeResponsesStream()
    joined = b"".join(frames)

    # Cut anywhere, even inside the last event's data line.
    relayed = stream.feed(joined[:-40]) + stream.feed(joined[-40:]) + stream.close()

    assert b"".join(relayed) == joined
    assert stream.usage["prompt_tokens"] == 36 and stream.usage["completion_tokens"] == 87


def test_native_stream_cut_short_gets_an_error_event():
    stream = NativeResponsesStream()
    frames = fake_responses.stream_frames()

    relayed = [frame for f in frames[:4] for frame in stream.feed(f)] + stream.close()

    assert relayed[-2].startswith(b"event: error\n") and relayed[-1] == b""
