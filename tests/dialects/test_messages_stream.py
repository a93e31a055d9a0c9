"""OpenAI chunk streams -> Anthropic Messages events, driven by recorded streams.

Each stream is checked against Anthropic's grammar (``support.accumulate``) and against what the
upstream said; cut at every byte (small streams) or around every event boundary (large ones),
the output must not change. Round trips run a recorded Anthropic stream through the existing
Anthropic adapter (Anthropic -> OpenAI chunks) and back through the dialect, and Cohere's and
Ollama's recorded streams through their adapters and then the dialect, as the gateway would
chain them for those backends.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.providers.anthropic.stream import AnthropicStream
from backends.providers.base import OpenAIError
from backends.providers.cohere import CohereProvider
from backends.providers.ollama import OllamaProvider
from gateway.dialects.anthropic_messages import OpenAIToAnthropicStream
from tests.dialects.support import accumulate, content_summary, events
from tests.fakes import recordings

OPENAI_STREAMS = [
    ("openai", "chat_stream_text", None),
    ("openai", "chat_stream_text_raw_http", None),
    ("openai", "chat_stream_parallel_tool_calls", 1),
    ("openai", "chat_stream_max_tokens_length", None),
    ("deepseek", "reasoner_stream", None),
    ("deepseek", "chat_stream_tools_multiturn", 1),
    ("ollama", "openai_compat_stream_text_local", None),
]
ANTHROPIC_STREAMS = [
    ("messages_stream_text", None),
    ("messages_stream_max_tokens", None),
    ("messages_stream_raw_http", None),
    ("messages_stream_parallel_tool_use", 1),
    ("messages_stream_parallel_tool_use", 2),
    ("messages_stream_thinking", 1),
    ("messages_stream_thinking", 2),
    ("messages_stream_tool_no_args_multiturn", 1),
    ("messages_stream_tool_no_args_multiturn", 2),
]
WHOLE_CUTS_UP_TO = 6000  # bytes: every cut for streams this small, event boundaries beyond


def translate(body: bytes, pieces=None) -> bytes:
    stream = OpenAIToAnthropicStream("my-model")
    out = []
    for piece in pieces if pieces is not None else [body]:
        out += stream.feed(piece)
    out += stream.close()
    return b"".join(out)


def openai_summary(body: bytes) -> dict:
    """What an OpenAI client assembles from a chunk stream."""
    text, reasoning, calls, finish, usage = "", "", {}, None, None
    for frame in recordings.sse_frames(body):
        data = frame.decode().strip()[5:].strip()
        if data == "[DONE]":
            break
        chunk = json.loads(data)
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or delta.get("reasoning") or ""
            for call in delta.get("tool_calls") or []:
                entry = calls.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                entry["id"] = call.get("id") or entry["id"]
                entry["name"] += (call.get("function") or {}).get("name") or ""
                entry["arguments"] += (call.get("function") or {}).get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    return {"text": text, "reasoning": reasoning, "calls": calls, "finish": finish, "usage": usage}


def cuts(body: bytes) -> list[int]:
    if len(body) <= WHOLE_CUTS_UP_TO:
        return list(range(1, len(body)))
    positions = set()
    start = 0
    while (found := body.find(b"\n\n", start)) >= 0:
        positions.update(p for p in range(found - 2, found + 4) if 0 < p < len(body))
        start = found + 2
    return sorted(positions)


@pytest.mark.parametrize(("provider", "name", "index"), OPENAI_STREAMS)
def test_recorded_openai_streams_become_anthropic_streams(provider, name, index):
    body = recordings.response(provider, name, index)
    expected = openai_summary(body)
    message = accumulate(translate(body))
    assert message["model"] == "my-model"
    texts = [block["text"] for block in message["content"] if block["type"] == "text"]
    assert "".join(texts) == expected["text"]
    thinking = [block["thinking"] for block in message["content"] if block["type"] == "thinking"]
    assert "".join(thinking) == expected["reasoning"]
    tools = [block for block in message["content"] if block["type"] == "tool_use"]
    assert [(t["id"], t["name"], t["input"]) for t in tools] == [
        (c["id"], c["name"], json.loads(c["arguments"] or "{}")) for _, c in sorted(expected["calls"].items())
    ]
    reasons = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
    assert message["stop_reason"] == reasons[expected["finish"]]
    if expected["usage"]:
        assert message["usage"]["output_tokens"] == expected["usage"]["completion_tokens"]


@pytest.mark.parametrize(("provider", "name", "index"), OPENAI_STREAMS)
def test_cutting_the_stream_anywhere_changes_nothing(provider, name, index):
    body = recordings.response(provider, name, index)
    whole = translate(body)
    for cut in cuts(body):
        assert translate(body, [body[:cut], body[cut:]]) == whole, f"cut at byte {cut}"
    assert translate(body, [body[i : i + 1] for i in range(len(body))]) == whole


def test_usage_is_kept_for_the_gateway_accounting():
    body = recordings.response("openai", "chat_stream_parallel_tool_calls", 1)
    stream = OpenAIToAnthropicStream("m")
    stream.feed(body)
    stream.close()
    assert stream.usage == openai_summary(body)["usage"]


def anthropic_to_openai(body: bytes) -> bytes:
    adapter = AnthropicStream({"model": "claude", "stream": True, "stream_options": {"include_usage": True}})
    return b"".join(adapter.feed(body) + adapter.close())


@pytest.mark.parametrize(("name", "index"), ANTHROPIC_STREAMS)
def test_recorded_anthropic_streams_survive_the_round_trip(name, index):
    original = recordings.response("anthropic", name, index)
    expected = accumulate(original)
    again = accumulate(translate(anthropic_to_openai(original)))
    assert content_summary(again) == content_summary(expected)
    assert again["stop_reason"] == expected["stop_reason"]
    assert again["usage"]["output_tokens"] == expected["usage"]["output_tokens"]
    assert again["usage"]["input_tokens"] == expected["usage"]["input_tokens"]
    signatures = [b.get("signature") for b in expected["content"] if b["type"] == "thinking"]
    assert [b.get("signature") for b in again["content"] if b["type"] == "thinking"] == signatures


def _adapter_frames(translator, body: bytes) -> bytes:
    return b"".join(translator.feed(body) + translator.close())


def _chained(translator, body: bytes) -> bytes:
    """The adapter's OpenAI frames, fed to the dialect as the relay would."""
    dialect = OpenAIToAnthropicStream("m")
    out = []
    for frame in translator.feed(body) + translator.close():
        out += dialect.feed(frame)
    return b"".join(out + dialect.close())


def test_cohere_stream_through_its_adapter_then_the_dialect():
    body = recordings.response("cohere", "v2_chat_stream_tool_call_langchain")
    expected = openai_summary(_adapter_frames(CohereProvider().chat_stream({"model": "c", "stream": True}), body))
    message = accumulate(_chained(CohereProvider().chat_stream({"model": "c", "stream": True}), body))
    tools = [block for block in message["content"] if block["type"] == "tool_use"]
    assert [(t["name"], t["input"]) for t in tools] == [
        (c["name"], json.loads(c["arguments"] or "{}")) for _, c in sorted(expected["calls"].items())
    ]
    assert tools and message["stop_reason"] == "tool_use"


def test_ollama_stream_through_its_adapter_then_the_dialect():
    body = recordings.response("ollama", "native_chat_stream")
    expected = openai_summary(_adapter_frames(OllamaProvider().chat_stream({"model": "o", "stream": True}), body))
    message = accumulate(_chained(OllamaProvider().chat_stream({"model": "o", "stream": True}), body))
    assert content_summary(message) == [("text", expected["text"])]
    assert message["stop_reason"] == "end_turn"


# --- endings that are not happy ----------------------------------------------------------------

CHUNK = b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
FINISH = b'data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'


def test_an_error_frame_midway_ends_with_an_anthropic_error_event():
    error = b'data: {"error":{"message":"model overloaded","type":"server_error","code":503}}\n\n'
    out = translate(CHUNK + error + FINISH + b"data: [DONE]\n\n")
    names = [name for name, _ in events(out)]
    assert names[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert names[-1] == "error" and "message_stop" not in names
    assert events(out)[-1][1]["error"] == {"type": "overloaded_error", "message": "model overloaded"}


def test_a_stream_cut_before_its_finish_ends_with_an_error_event():
    name, data = events(translate(CHUNK))[-1]
    assert name == "error" and data["error"]["type"] == "api_error"
    name, _ = events(translate(CHUNK + b"data: [DONE]\n\n"))[-1]
    assert name == "error"


def test_a_finish_without_done_still_completes_the_message():
    message = accumulate(translate(CHUNK + FINISH))
    assert content_summary(message) == [("text", "Hel")] and message["stop_reason"] == "end_turn"


def test_the_relay_can_end_a_stream_with_an_error():
    stream = OpenAIToAnthropicStream("m")
    stream.feed(CHUNK)
    out = stream.error(OpenAIError(502, "backend b sent nothing for 30 s", code="upstream_timeout"))
    assert events(b"".join(out))[-1][1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "backend b sent nothing for 30 s"},
    }
    assert stream.feed(FINISH) == [] and stream.close() == [] and stream.error(OpenAIError(500, "x")) == []


def test_comments_crlf_and_unparsed_chunks():
    body = b": keep-alive\r\n\r\n" + CHUNK.replace(b"\n", b"\r\n") + FINISH + b"data: [DONE]\n\n"
    assert content_summary(accumulate(translate(body))) == [("text", "Hel")]
    stream = OpenAIToAnthropicStream("m")
    frames = stream.feed_chunk(json.loads(CHUNK[6:])) + stream.feed_chunk(json.loads(FINISH[6:])) + stream.close()
    assert content_summary(accumulate(b"".join(frames))) == [("text", "Hel")]


def test_tool_call_without_arguments_and_without_index():
    body = (
        b'data: {"id":"c","choices":[{"delta":{"tool_calls":[{"id":"call_1","function":{"name":"now"}}]}}]}\n\n'
        b'data: {"id":"c","choices":[{"delta":{},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n'
    )
    message = accumulate(translate(body))
    assert content_summary(message) == [("tool_use", "call_1", "now", {})]
    assert message["stop_reason"] == "tool_use"


def test_interleaved_tool_arguments_still_reach_their_block():
    def call(index, **fields):
        return json.dumps({"choices": [{"delta": {"tool_calls": [{"index": index, **fields}]}}]}).encode()

    body = b"".join(
        b"data: " + line + b"\n\n"
        for line in (
            call(0, id="a", function={"name": "f", "arguments": '{"x":'}),
            call(1, id="b", function={"name": "g", "arguments": '{"y":2}'}),
            call(0, function={"arguments": "1}"}),
            b'{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}',
            b"[DONE]",
        )
    )
    message = accumulate(translate(body))
    assert content_summary(message)[0][3] == {"x": 1} and content_summary(message)[1][3] == {"y": 2}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.binary(max_size=40)
        | st.sampled_from([CHUNK, FINISH, b"data: [DONE]\n\n", b"data: {}\n\n", b"data: [1]\n\n", b"\n", b"data: "])
        | st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=4),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        ["choices", "delta", "content", "tool_calls", "index", "function", "usage", "error"]
                    ),
                    c,
                    max_size=3,
                )
            ),
            max_leaves=10,
        ).map(lambda value: b"data: " + json.dumps(value).encode() + b"\n\n"),
        max_size=12,
    )
)
def test_any_upstream_bytes_end_in_message_stop_or_an_error(pieces):
    out = translate(b"".join(pieces), pieces)
    parsed = events(out)
    assert parsed, "close() always says how the stream ended"
    assert parsed[-1][0] in ("message_stop", "error")
    if parsed[-1][0] == "message_stop":
        accumulate(out)
