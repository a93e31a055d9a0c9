"""Anthropic Messages requests -> OpenAI chat requests, checked against the recorded requests.

The strongest check is the round trip: a recorded Anthropic request, translated to OpenAI chat
by the dialect and back to Anthropic by the existing Anthropic adapter, must come back as the
same request for every field the dialect carries. If the dialect's inverted tables were wrong,
the adapter (which is tested against Anthropic's real answers) would not give the request back.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.providers import provider_for
from backends.providers.anthropic.request import build_body
from backends.providers.base import InvalidRequestError
from backends.snapshot import BackendRoute
from gateway.dialects.anthropic_messages import (
    MessagesRequestError,
    count_tokens_estimate,
    parse_messages,
    to_openai_chat,
)
from tests.fakes import recordings

# Every recorded Anthropic request (name, interaction index).
RECORDED_REQUESTS = [
    (name, index)
    for name in (
        "messages_text",
        "messages_max_tokens",
        "messages_image_url_input",
        "messages_parallel_tool_use",
        "messages_thinking",
        "messages_stream_text",
        "messages_stream_max_tokens",
        "messages_stream_parallel_tool_use",
        "messages_stream_thinking",
        "messages_stream_tool_no_args_multiturn",
        "messages_stream_raw_http",
        "error_400_effort_unsupported",
        "error_404_model_not_found",
        "error_401_invalid_x_api_key",
    )
    for index in range(len(recordings.interactions("anthropic", name)))
]
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
TOOL = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def recorded_body(name: str, index: int) -> dict:
    return recordings.interactions("anthropic", name)[index]["request"]["body"]


def encode(payload) -> bytes:
    return json.dumps(payload).encode()


def request(**fields) -> dict:
    base = {"model": "claude-sonnet-4-0", "max_tokens": 256, "messages": [{"role": "user", "content": "Hi"}]}
    return {**base, **fields}


def translate(payload: dict) -> tuple[dict, set[str]]:
    parsed, model = parse_messages(encode(payload))
    assert model == payload["model"]
    dropped: set[str] = set()
    return to_openai_chat(parsed, dropped), dropped


def canonical(body: dict) -> dict:
    """The carried fields of an Anthropic request, in one spelling (strings as text blocks,
    no cache_control / citations / thinking history, one-text tool results as strings)."""
    body = copy.deepcopy(body)
    out = {key: body[key] for key in ("model", "max_tokens", "temperature", "top_p", "top_k") if key in body}
    if body.get("stream"):
        out["stream"] = True
    if body.get("stop_sequences"):
        out["stop_sequences"] = body["stop_sequences"]
    if (body.get("metadata") or {}).get("user_id"):
        out["metadata"] = {"user_id": body["metadata"]["user_id"]}
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    if system:
        out["system"] = [{"type": "text", "text": block["text"]} for block in system if block["text"]]
    out["messages"] = [
        {"role": message["role"], "content": _blocks(message["content"])} for message in body["messages"]
    ]
    out["messages"] = [message for message in out["messages"] if message["content"]]
    if body.get("tools"):
        out["tools"] = [
            {key: tool[key] for key in ("name", "description", "input_schema") if key in tool} for tool in body["tools"]
        ]
        if body.get("tool_choice"):
            out["tool_choice"] = body["tool_choice"]
    return out


def _blocks(content) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for original in content:
        block = {key: value for key, value in original.items() if key not in ("cache_control", "citations")}
        if block["type"] in ("thinking", "redacted_thinking"):
            continue
        if block["type"] == "text" and not block["text"]:
            continue
        if block["type"] == "tool_result":
            inner = block.get("content")
            if isinstance(inner, list):
                inner = [{"type": part["type"], "text": part["text"]} for part in inner]
                if len(inner) == 1:
                    inner = inner[0]["text"]
            if inner:
                block["content"] = inner
            else:
                block.pop("content", None)
            block.pop("is_error", None)
        blocks.append(block)
    # Anthropic wants tool results first in a user turn; the adapter puts them there.
    blocks.sort(key=lambda block: block["type"] != "tool_result")
    return blocks


@pytest.mark.parametrize(("name", "index"), RECORDED_REQUESTS)
def test_recorded_requests_round_trip_through_the_anthropic_adapter(name, index):
    original = recorded_body(name, index)
    chat, _ = translate(original)
    again = build_body(chat)
    assert canonical(again) == canonical(original)
    if "thinking" in original:
        # A budget becomes an effort class; the adapter turns that back into a budget no larger.
        assert chat["reasoning_effort"] in ("low", "medium", "high")
        assert again["thinking"]["budget_tokens"] <= original["thinking"]["budget_tokens"]


def test_recorded_requests_name_what_they_drop():
    _, dropped = translate(recorded_body("messages_parallel_tool_use", 1))
    assert dropped == {"system.cache_control", "tools.cache_control", "messages.content.cache_control"}
    _, dropped = translate(recorded_body("messages_thinking", 1))
    assert dropped == {"messages.content.thinking", "messages.content.cache_control"}
    _, dropped = translate(recorded_body("error_400_effort_unsupported", 0))
    assert dropped == {"output_config"}
    _, dropped = translate(recorded_body("messages_text", 0))
    assert dropped == set()


def test_parallel_tool_use_history_becomes_tool_calls_and_tool_messages():
    chat, _ = translate(recorded_body("messages_parallel_tool_use", 1))
    assert chat["messages"][0] == {"role": "system", "content": "Use parallel tool calling."}
    assistant, first, second = chat["messages"][2:]
    assert assistant["content"] == "I'll retrieve the secrets for both passwords you provided."
    assert [call["function"]["name"] for call in assistant["tool_calls"]] == ["secret_retrieval_tool"] * 2
    assert json.loads(assistant["tool_calls"][1]["function"]["arguments"]) == {"password": "radiance"}
    assert first == {"role": "tool", "tool_call_id": "toolu_01BUvqBj8Yb34pNAbCJJY1oc", "content": "Welcome to Moria!"}
    assert second["content"] == "Life before Death"
    assert chat["tools"][0]["function"]["parameters"]["required"] == ["password"]


def test_stream_asks_the_upstream_for_usage():
    chat, _ = translate(recorded_body("messages_stream_text", 0))
    assert chat["stream"] is True
    assert chat["stream_options"] == {"include_usage": True}


def test_images_base64_and_url_become_image_url_parts_and_come_back():
    payload = request(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.org/cat.jpg"}},
                    {"type": "text", "text": "Compare them."},
                ],
            }
        ]
    )
    chat, _ = translate(payload)
    parts = chat["messages"][0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert parts[1] == {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg"}}
    assert canonical(build_body(chat)) == canonical(payload)


def test_pdf_document_becomes_a_file_part_and_comes_back():
    source = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQK"}
    payload = request(messages=[{"role": "user", "content": [{"type": "document", "source": source}]}])
    chat, _ = translate(payload)
    assert chat["messages"][0]["content"][0]["file"]["file_data"] == "data:application/pdf;base64,JVBERi0xLjQK"
    assert canonical(build_body(chat)) == canonical(payload)


@pytest.mark.parametrize(
    ("choice", "openai"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_tool_choice_inverts_the_adapter_table(choice, openai):
    payload = request(tools=[TOOL], tool_choice=choice)
    chat, _ = translate(payload)
    assert chat["tool_choice"] == openai
    assert "parallel_tool_calls" not in chat
    assert build_body(chat)["tool_choice"] == choice


def test_disable_parallel_tool_use_becomes_parallel_tool_calls_false():
    choice = {"type": "any", "disable_parallel_tool_use": True}
    chat, _ = translate(request(tools=[TOOL], tool_choice=choice))
    assert chat["parallel_tool_calls"] is False
    assert build_body(chat)["tool_choice"] == choice


def test_tool_choice_without_tools_is_dropped():
    chat, dropped = translate(request(tool_choice={"type": "auto"}))
    assert "tool_choice" not in chat
    assert dropped == {"tool_choice"}


def test_sampling_stop_sequences_and_metadata_are_carried():
    payload = request(
        temperature=0.3,
        top_p=0.9,
        top_k=40,
        stop_sequences=["\n\nHuman:", "END"],
        metadata={"user_id": "user-42"},
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
    )
    chat, dropped = translate(payload)
    assert chat["stop"] == ["\n\nHuman:", "END"]
    assert chat["user"] == "user-42"
    assert (chat["temperature"], chat["top_p"], chat["top_k"]) == (0.3, 0.9, 40)
    assert chat["messages"][0]["content"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Be kind."},
    ]
    assert dropped == set()
    assert canonical(build_body(chat)) == canonical(payload)


@pytest.mark.parametrize(
    ("budget", "effort"), [(1024, "low"), (2047, "low"), (2048, "medium"), (6400, "high"), (50_000, "high")]
)
def test_thinking_budget_maps_to_the_effort_below_it(budget, effort):
    chat, _ = translate(request(max_tokens=60_000, thinking={"type": "enabled", "budget_tokens": budget}))
    assert chat["reasoning_effort"] == effort


def test_thinking_disabled_sends_nothing_and_unknown_kinds_are_dropped():
    chat, dropped = translate(request(thinking={"type": "disabled"}))
    assert "reasoning_effort" not in chat and not dropped
    chat, dropped = translate(request(thinking={"type": "adaptive"}))
    assert "reasoning_effort" not in chat and dropped == {"thinking"}


def test_tool_result_error_flag_and_cache_control_are_dropped_and_named():
    payload = request(
        tools=[TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Here you go", "cache_control": {"type": "ephemeral"}},
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "timeout", "is_error": True},
                ],
            },
        ],
    )
    chat, dropped = translate(payload)
    # The tool result goes first, as OpenAI wants tool messages right after the assistant's calls.
    assert [message["role"] for message in chat["messages"]] == ["user", "assistant", "tool", "user"]
    assert dropped == {"messages.content.cache_control", "messages.content.tool_result.is_error"}
    assert chat["messages"][1]["content"] is None


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (request(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools.0.type"),
        (
            request(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [
                                    {
                                        "type": "image",
                                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                                    }
                                ],
                            }
                        ],
                    }
                ]
            ),
            "messages.0.content.0.content.0.type",
        ),
        (
            request(
                messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]
            ),
            "messages.0.content.0.source.type",
        ),
        (
            request(messages=[{"role": "user", "content": [{"type": "search_result", "x": 1}]}]),
            "messages.0.content.0.type",
        ),
        (
            request(
                messages=[
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s", "name": "web_search"}]},
                ]
            ),
            "messages.1.content.0.type",
        ),
    ],
)
def test_what_cannot_be_carried_is_refused_not_dropped(payload, param):
    parsed, _ = parse_messages(encode(payload))  # valid Anthropic: a passthrough would take it
    with pytest.raises(MessagesRequestError) as caught:
        to_openai_chat(parsed)
    assert caught.value.param == param
    body = json.loads(caught.value.body())
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'{"max_tokens": 5, "messages": []}', "model"),
        (encode({"model": "m", "messages": []}), "max_tokens"),
        (encode(request(max_tokens=0)), "max_tokens"),
        (encode(request(max_tokens="5")), "max_tokens"),
        (encode(request(messages="hi")), "messages"),
        (encode(request(messages=[{"role": "system", "content": "x"}])), "messages.0.role"),
        (encode(request(messages=[{"role": "user", "content": 5}])), "messages.0.content"),
        (encode(request(messages=[{"role": "user", "content": [{"text": "x"}]}])), "messages.0.content.0.type"),
        (
            encode(request(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}])),
            "messages.0.content.0.text",
        ),
        (encode(request(system=[{"type": "image"}])), "system.0"),
        (encode(request(system=7)), "system"),
        (encode(request(temperature=1.5)), "temperature"),
        (encode(request(stop_sequences="END")), "stop_sequences"),
        (encode(request(stream="yes")), "stream"),
        (encode(request(tools=[{"name": "x"}])), "tools.0.input_schema"),
        (encode(request(tool_choice={"type": "sometimes"})), "tool_choice.type"),
        (encode(request(tool_choice={"type": "tool"})), "tool_choice.name"),
        (encode(request(thinking={"type": "enabled"})), "thinking.budget_tokens"),
        (encode(request(metadata={"user_id": 5})), "metadata.user_id"),
        (
            encode(
                request(
                    messages=[{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": []}]}]
                )
            ),
            "messages.0.content.0.input",
        ),
    ],
)
def test_invalid_requests_are_anthropic_shaped_400s_naming_the_field(body, param):
    with pytest.raises(MessagesRequestError) as caught:
        parse_messages(body)
    error = caught.value
    assert error.status == 400
    assert error.param == param
    envelope = json.loads(error.body())
    assert envelope == {"type": "error", "error": {"type": "invalid_request_error", "message": str(error)}}


def test_count_tokens_bodies_need_no_max_tokens():
    payload, _ = parse_messages(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}', count_tokens=True)
    assert count_tokens_estimate(payload) >= 1
    with pytest.raises(MessagesRequestError):
        parse_messages(b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')


def test_count_tokens_estimate_follows_its_documented_formula():
    text = "x" * 400  # 100 tokens
    payload = request(messages=[{"role": "user", "content": text}])
    assert count_tokens_estimate(payload) == 100 + 3
    image = {"type": "image", "source": {"type": "url", "url": "https://example.org/a.png"}}
    payload = request(messages=[{"role": "user", "content": [{"type": "text", "text": text}, image]}], system="y" * 4)
    assert count_tokens_estimate(payload) == 101 + 3 + 1600
    with_tools = request(messages=[{"role": "user", "content": text}], tools=[TOOL])
    tool_bytes = len(json.dumps(TOOL, ensure_ascii=False).encode())
    assert count_tokens_estimate(with_tools) == math.ceil((400 + tool_bytes) / 4) + 3 + 346
    # UTF-8 bytes, not characters: "é" is two bytes.
    assert count_tokens_estimate(request(messages=[{"role": "user", "content": "é" * 4}])) == 2 + 3


def test_count_tokens_estimate_of_every_recorded_request_is_positive():
    for name, index in RECORDED_REQUESTS:
        payload, _ = parse_messages(encode(recorded_body(name, index)), count_tokens=True)
        assert count_tokens_estimate(payload) > 0


# --- hostile input ------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*prefix, index))


def _replace(value, path, new):
    if not path:
        return new
    value = copy.deepcopy(value)
    target = value
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return value


RICH_REQUEST = request(
    system=[{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
    stream=True,
    stop_sequences=["END"],
    metadata={"user_id": "u"},
    thinking={"type": "enabled", "budget_tokens": 2048},
    tools=[TOOL],
    tool_choice={"type": "any", "disable_parallel_tool_use": True},
    messages=[
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sun"}]}
            ],
        },
    ],
)
RICH_PATHS = list(_paths(RICH_REQUEST))


def _survives(body: bytes) -> None:
    try:
        payload, _ = parse_messages(body)
    except MessagesRequestError as error:
        json.loads(error.body())
        return
    count_tokens_estimate(payload)
    try:
        chat = to_openai_chat(payload, set())
    except MessagesRequestError:
        return
    json.dumps(chat)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(RICH_PATHS), JSON_VALUES)
def test_any_value_anywhere_is_a_result_or_a_400(path, value):
    _survives(encode(_replace(RICH_REQUEST, path, value)))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | JSON_VALUES.map(lambda value: json.dumps(value).encode()))
def test_any_body_is_a_result_or_a_400(body):
    _survives(body)


def test_deep_nesting_and_lone_surrogates_are_not_500s():
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(MessagesRequestError):
        parse_messages(deep.encode())
    nested = {}
    for _ in range(900):
        nested = {"a": nested}
    payload = request(tools=[{**TOOL, "input_schema": nested}])
    _survives(encode(payload))
    _survives(b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "\\ud800"}]}')


# --- what each backend kind's adapter makes of the translation --------------------------------


@pytest.mark.parametrize("kind", ["openai_compatible", "cohere", "ollama", "anthropic"])
@pytest.mark.parametrize(("name", "index"), RECORDED_REQUESTS)
def test_every_adapter_takes_the_translated_recorded_requests(kind, name, index, caplog):
    route = BackendRoute(name="b", kind=kind, url="http://127.0.0.1:9/v1", api_key="")
    chat, _ = translate(recorded_body(name, index))
    body = json.dumps(chat).encode()
    if kind == "ollama" and name == "messages_image_url_input":
        # Ollama takes base64 images only: the documented refusal, a 400 naming the part.
        with pytest.raises(InvalidRequestError) as caught:
            provider_for(kind).chat_request(route, chat, body)
        assert "image_url" in caught.value.param
        return
    upstream = provider_for(kind).chat_request(route, chat, body)
    assert upstream.method == "POST" and upstream.content
