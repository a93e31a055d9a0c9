"""The native Anthropic adapter: sans-IO translation against recorded traffic, then end to end
through the real gateway with the official openai SDK and a fake Anthropic built from the
recordings (tests/fakes/anthropic.py), which answers 400 to any request Anthropic would refuse.
"""

from __future__ import annotations

import json
import logging
import random

import openai
import pytest

from backends.probe import probe
from backends.providers import provider_for
from backends.providers.anthropic import AnthropicProvider
from backends.providers.base import SSE_DONE, ProviderError
from backends.snapshot import BackendRoute
from tests.conftest import route_for
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import recordings

MODEL = "claude-sonnet-4-0"
KEY = "sk-ant-test-key-0001"
MESSAGES_PATH = "/v1/messages"

PARALLEL_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "secret_retrieval_tool",
            "description": "A tool that requires a password to retrieve a secret.",
            "parameters": {
                "properties": {"password": {"title": "Password", "type": "string"}},
                "required": ["password"],
                "additionalProperties": False,
                "type": "object",
            },
        },
    }
]
PARALLEL_PROMPT = [
    {"role": "system", "content": "Use parallel tool calling."},
    {"role": "user", "content": "Please retrieve the secrets associated with each of these passwords: mellon,radiance"},
]
NO_ARGS_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "best_language_to_learn",
            "description": "Gets the best language to learn",
            "parameters": {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
        },
    }
]
PRIMES = recordings.interactions("anthropic", "messages_thinking")[0]["request"]["body"]["messages"][0]["content"]
PRIMES_FOLLOW_UP = "If you remember what the primes were, then share them, or say 'I don't remember.'"


def recorded_request(name: str, index: int = 0) -> dict:
    return recordings.interactions("anthropic", name)[index]["request"]["body"]


def canonical(value):
    """Anthropic request parts compared by meaning: no nulls, no cache hints, strings as text blocks."""
    if isinstance(value, dict):
        out = {k: canonical(v) for k, v in value.items() if v is not None and k != "cache_control"}
        if isinstance(out.get("content"), str) and "role" in out:
            out["content"] = [{"type": "text", "text": out["content"]}]
        return out
    if isinstance(value, list):
        return [canonical(v) for v in value]
    return value


def route(url: str = "http://anthropic.test/v1", **extra) -> BackendRoute:
    return BackendRoute(name="claude", kind="anthropic", url=url, api_key=KEY, **extra)


def translate(payload: dict) -> dict:
    request = AnthropicProvider().chat_request(route(), payload, json.dumps(payload).encode())
    return json.loads(request.content)


def stream_frames(body: bytes, payload: dict | None = None, *, slices: bool = False) -> list[bytes]:
    translator = AnthropicProvider().chat_stream(payload or {"model": MODEL, "stream": True})
    frames: list[bytes] = []
    position = 0
    rng = random.Random(len(body))
    while position < len(body):
        size = rng.randint(1, 7) if slices else len(body)
        frames += translator.feed(body[position : position + size])
        position += size
    return frames + translator.close()


def chunks(frames: list[bytes]) -> list[dict]:
    assert frames[-1] == SSE_DONE
    return [json.loads(f.removeprefix(b"data: ")) for f in frames[:-1]]


def content_of(parsed: list[dict], field: str = "content") -> str:
    return "".join(c["choices"][0]["delta"].get(field) or "" for c in parsed if c["choices"])


@pytest.fixture
def claude(fake_provider, gateway):
    """A fake Anthropic routed as backend "claude" (kind anthropic) for MODEL."""
    fake = fake_provider("claude")
    gateway.route((route_for(fake, kind="anthropic", key=KEY), [MODEL]))
    return fake


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


# --- registry and request translation -------------------------------------------------------


def test_registry_serves_the_anthropic_adapter():
    provider = provider_for("anthropic")
    assert isinstance(provider, AnthropicProvider)
    assert provider.kind == "anthropic"
    assert provider.passthrough is False


def test_request_goes_to_messages_with_anthropic_auth_and_backend_headers():
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    request = AnthropicProvider().chat_request(
        route(headers=(("anthropic-beta", "context-1m-2025-08-07"),)), payload, b""
    )
    assert request.method == "POST"
    assert request.url == "http://anthropic.test/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert "authorization" not in request.headers


def test_tool_round_trip_translates_to_the_recorded_anthropic_request():
    # given the OpenAI form of the second turn recorded in messages_parallel_tool_use
    calls = [
        {"id": f"toolu_{suffix}", "type": "function", "function": {"name": "secret_retrieval_tool", "arguments": args}}
        for suffix, args in (
            ("01BUvqBj8Yb34pNAbCJJY1oc", '{"password": "mellon"}'),
            ("01VPuQJ1LonDBYXrr8pqPkqQ", '{"password": "radiance"}'),
        )
    ]
    payload = {
        "model": MODEL,
        "max_tokens": 16000,
        "tools": PARALLEL_TOOLS,
        "messages": [
            *PARALLEL_PROMPT,
            {
                "role": "assistant",
                "content": "I'll retrieve the secrets for both passwords you provided.",
                "tool_calls": calls,
            },
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "Welcome to Moria!"},
            {"role": "tool", "tool_call_id": calls[1]["id"], "content": "Life before Death"},
        ],
    }
    # when / then: what Anthropic accepted in the recording
    assert canonical(translate(payload)) == canonical(recorded_request("messages_parallel_tool_use", 1))


def test_system_and_developer_messages_join_the_top_level_system_and_roles_alternate():
    body = translate(
        {
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "one"},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": [{"type": "text", "text": "two"}]},
                {"role": "assistant", "content": "un"},
                {"role": "assistant", "content": [{"type": "text", "text": "deux"}]},
                {"role": "user", "content": "trois?"},
            ],
        }
    )
    assert body["system"] == [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Answer in French."}]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert [b["text"] for b in body["messages"][0]["content"]] == ["one", "two"]
    assert [b["text"] for b in body["messages"][1]["content"]] == ["un", "deux"]
    assert (
        fake_anthropic.request_problems(
            {"x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"},
            json.dumps(body).encode(),
        )
        == []
    )


def test_tool_results_open_the_user_turn_even_when_text_came_first():
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = translate(
        {
            "model": MODEL,
            "tools": NO_ARGS_TOOLS,
            "messages": [
                {"role": "user", "content": "go"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "user", "content": "and hurry"},
                {"role": "tool", "tool_call_id": "toolu_1", "content": [{"type": "text", "text": "done"}]},
            ],
        }
    )
    last = body["messages"][-1]
    assert last["role"] == "user"
    assert [b["type"] for b in last["content"]] == ["tool_result", "text"]
    assert last["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": "text", "text": "done"}],
    }
    assert body["messages"][1]["content"] == [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]


def test_images_become_url_and_base64_image_blocks():
    body = translate(
        {
            "model": MODEL,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Describe the following image in one sentence"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://en.wikipedia.org/static/images/icons/wikipedia.png"},
                        },
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
                        },
                    ],
                }
            ],
        }
    )
    recorded = canonical(recorded_request("messages_image_url_input")["messages"][0]["content"])
    assert body["messages"][0]["content"][:2] == recorded
    assert body["messages"][0]["content"][2] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        ({"type": "function", "function": {"name": "f"}}, None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        (None, None, None),
    ],
)
def test_tool_choice_and_parallel_tool_calls(tool_choice, parallel, expected):
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "tools": PARALLEL_TOOLS}
    if tool_choice is not None:
        payload["tool_choice"] = tool_choice
    if parallel is not None:
        payload["parallel_tool_calls"] = parallel
    body = translate(payload)
    assert body.get("tool_choice") == expected
    assert body["tools"] == [
        {
            "name": "secret_retrieval_tool",
            "description": "A tool that requires a password to retrieve a secret.",
            "input_schema": PARALLEL_TOOLS[0]["function"]["parameters"],
        }
    ]


def test_sampling_stop_user_and_stream_fields_map_and_openai_only_fields_are_dropped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="backends.providers.anthropic"):
        body = translate(
            {
                "model": MODEL,
                "messages": [{"role": "user", "content": "x"}],
                "max_completion_tokens": 300,
                "temperature": 1.6,
                "top_p": 0.9,
                "stop": "END",
                "user": "user-42",
                "stream": True,
                "stream_options": {"include_usage": True},
                "presence_penalty": 0.5,
                "seed": 7,
            }
        )
    assert body["max_tokens"] == 300
    assert body["temperature"] == 1.0
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-42"}
    assert body["stream"] is True
    assert not {"stream_options", "presence_penalty", "seed", "user", "max_completion_tokens"} & set(body)
    assert "presence_penalty, seed" in caplog.text
    assert "clamped" in caplog.text


def test_max_tokens_default_comes_from_settings(settings):
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    assert translate(payload)["max_tokens"] == 4096
    settings.ELDRIC_ANTHROPIC_DEFAULT_MAX_TOKENS = 1234
    assert translate(payload)["max_tokens"] == 1234
    assert translate({**payload, "max_tokens": 50})["max_tokens"] == 50


def test_reasoning_effort_becomes_a_thinking_budget_below_max_tokens():
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "x"}], "reasoning_effort": "high"}
    body = translate(payload)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert body["max_tokens"] == 4096 + 4096  # the default stays room for the answer
    assert translate({**payload, "max_tokens": 3000})["thinking"] == {"type": "enabled", "budget_tokens": 2999}
    assert "thinking" not in translate({**payload, "reasoning_effort": "none"})
    with pytest.raises(ProviderError, match="max_tokens above 1024"):
        translate({**payload, "max_tokens": 500})


@pytest.mark.parametrize(
    ("arguments", "message"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_invalid_tool_call_arguments_are_refused_clearly(arguments, message):
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": arguments}}
    payload = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]}],
    }
    with pytest.raises(ProviderError, match=message):
        translate(payload)


def test_unsupported_inputs_are_refused_rather_than_silently_lost():
    base = {"model": MODEL, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(ProviderError, match="n > 1"):
        translate({**base, "n": 2})
    with pytest.raises(ProviderError, match="input_audio"):
        translate({**base, "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})
    with pytest.raises(ProviderError, match="at least one user or assistant"):
        translate({**base, "messages": [{"role": "system", "content": "only a system prompt"}]})


# --- answers, streams, errors, discovery (sans-IO) ------------------------------------------


def test_parallel_tool_use_answer_becomes_openai_tool_calls():
    answer = json.loads(
        AnthropicProvider().chat_response(
            {"model": MODEL}, recordings.response("anthropic", "messages_parallel_tool_use", 1)
        )
    )
    assert answer["object"] == "chat.completion"
    assert answer["id"] == "msg_018DaxGuCtuQ42XfuFiC1wxo"
    assert answer["model"] == "claude-sonnet-4-20250514"
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "I'll retrieve the secrets for both passwords you provided."
    assert [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in choice["message"]["tool_calls"]
    ] == [
        ("toolu_01BUvqBj8Yb34pNAbCJJY1oc", "secret_retrieval_tool", {"password": "mellon"}),
        ("toolu_01VPuQJ1LonDBYXrr8pqPkqQ", "secret_retrieval_tool", {"password": "radiance"}),
    ]
    assert answer["usage"] == {
        "prompt_tokens": 416,
        "completion_tokens": 109,
        "total_tokens": 525,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason, finish):
    data = json.loads(recordings.response("anthropic", "messages_text"))
    data["stop_reason"] = stop_reason
    answer = json.loads(AnthropicProvider().chat_response({}, json.dumps(data).encode()))
    assert answer["choices"][0]["finish_reason"] == finish


def test_usage_counts_cache_writes_and_reads_as_prompt_tokens():
    data = json.loads(recordings.response("anthropic", "messages_text"))
    data["usage"].update(
        input_tokens=10, cache_creation_input_tokens=100, cache_read_input_tokens=1000, output_tokens=5
    )
    answer = json.loads(AnthropicProvider().chat_response({}, json.dumps(data).encode()))
    assert answer["usage"] == {
        "prompt_tokens": 1110,
        "completion_tokens": 5,
        "total_tokens": 1115,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }


@pytest.mark.parametrize(
    "name",
    [
        "messages_stream_text",
        "messages_stream_raw_http",
        "messages_stream_max_tokens",
        "messages_stream_parallel_tool_use.1",
        "messages_stream_thinking.1",
        "messages_stream_tool_no_args_multiturn.1",
    ],
)
def test_stream_translation_does_not_depend_on_where_the_bytes_are_cut(name):
    body = recordings.raw("anthropic", f"{name}.response.sse")
    payload = {"model": MODEL, "stream": True, "stream_options": {"include_usage": True}}
    whole = chunks(stream_frames(body, payload))
    sliced = chunks(stream_frames(body, payload, slices=True))
    for chunk in whole + sliced:
        chunk.pop("created")
    assert whole == sliced
    assert all(c["object"] == "chat.completion.chunk" and c["id"].startswith("msg_") and c["model"] for c in whole)
    assert whole[0]["choices"][0]["delta"]["role"] == "assistant"
    assert whole[-1]["choices"] == [] and whole[-1]["usage"]["total_tokens"] > 0


def test_streamed_parallel_tools_get_stable_openai_indices_counting_tool_blocks_only():
    parsed = chunks(stream_frames(recordings.raw("anthropic", "messages_stream_parallel_tool_use.1.response.sse")))
    calls: dict[int, dict] = {}
    for chunk in parsed:
        for call in chunk["choices"][0]["delta"].get("tool_calls") or ():
            entry = calls.setdefault(call["index"], {"id": call.get("id"), "arguments": ""})
            entry["arguments"] += call["function"]["arguments"]
    assert sorted(calls) == [0, 1]  # Anthropic block indices were 1 and 2 (0 was text)
    assert calls[0]["id"] == "toolu_015cUijgET79LXjgeYQerN2h"
    assert json.loads(calls[0]["arguments"]) == {"password": "mellon"}
    assert json.loads(calls[1]["arguments"]) == {"password": "radiance"}
    assert content_of(parsed) == "I'll retrieve the secrets for both passwords you provided."
    assert [c["choices"][0]["finish_reason"] for c in parsed if c["choices"][0]["finish_reason"]] == ["tool_calls"]
    assert not any("usage" in c for c in parsed)  # include_usage was not asked for


def test_data_only_recordings_and_a_tool_without_arguments():
    body = fake_anthropic.events_as_sse("messages_tool_no_args_chunks_only")
    parsed = chunks(stream_frames(body, slices=True))
    arguments = "".join(
        call["function"]["arguments"] for c in parsed for call in c["choices"][0]["delta"].get("tool_calls") or ()
    )
    assert arguments == "{}"
    assert content_of(parsed) == "I'll update the issue list for you."


def test_error_event_after_the_200_ends_the_stream_in_openai_shape():
    body = recordings.raw("anthropic", "messages_stream_text.response.sse").split(b"event: content_block_stop")[0]
    body += b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    frames = stream_frames(body, slices=True)
    assert frames[-1] == SSE_DONE
    assert json.loads(frames[-2].removeprefix(b"data: ")) == {
        "error": {"message": "Overloaded", "type": "overloaded_error", "param": None, "code": "overloaded"}
    }
    assert frames.count(SSE_DONE) == 1


def test_stream_cut_before_message_stop_ends_with_an_error_then_done():
    body = recordings.raw("anthropic", "messages_stream_text.response.sse").split(b"event: message_delta")[0]
    frames = stream_frames(body)
    assert frames[-1] == SSE_DONE
    assert json.loads(frames[-2].removeprefix(b"data: "))["error"]["code"] == "upstream_stream_error"


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (400, recordings.response("anthropic", "error_400_effort_unsupported"), {}, ("invalid_request_error", None)),
        (
            401,
            recordings.response("anthropic", "error_401_invalid_x_api_key"),
            {},
            ("authentication_error", "invalid_api_key"),
        ),
        (403, fake_anthropic.error_body("permission_error", "no access"), {}, ("permission_error", None)),
        (
            404,
            recordings.response("anthropic", "error_404_model_not_found", 1),
            {},
            ("not_found_error", "model_not_found"),
        ),
        (413, fake_anthropic.error_body("request_too_large", "too big"), {}, ("request_too_large", None)),
        (
            429,
            fake_anthropic.error_body("rate_limit_error", "slow down"),
            {"retry-after": "7"},
            ("rate_limit_error", "rate_limit_exceeded"),
        ),
        (500, fake_anthropic.error_body("api_error", "Internal server error"), {}, ("api_error", None)),
        (529, fake_anthropic.error_body("overloaded_error", "Overloaded"), {}, ("overloaded_error", "overloaded")),
    ],
)
def test_errors_keep_their_status_and_carry_anthropic_type(status, body, headers, expected):
    error = AnthropicProvider().error(status, body, headers)
    assert (error.status, error.type, error.code) == (status, *expected)
    assert error.message == json.loads(body)["error"]["message"]
    assert error.retry_after == (7.0 if status == 429 else None)


def test_models_page_follows_has_more_with_after_id():
    provider = AnthropicProvider()
    first = provider.models_request(route())
    assert first.url == "http://anthropic.test/v1/models?limit=1000"
    assert first.headers["x-api-key"] == KEY and first.headers["anthropic-version"] == "2023-06-01"
    page = provider.parse_models(
        route(),
        json.dumps(
            {
                "data": [{"type": "model", "id": "claude-sonnet-4-20250514", "created_at": "2025-05-14T00:00:00Z"}],
                "has_more": True,
                "first_id": "claude-sonnet-4-20250514",
                "last_id": "claude-sonnet-4-20250514",
            }
        ).encode(),
    )
    assert [(m.id, m.created) for m in page.models] == [("claude-sonnet-4-20250514", 1747180800)]
    assert page.next_request.url == "http://anthropic.test/v1/models?limit=1000&after_id=claude-sonnet-4-20250514"


# --- end to end: openai SDK -> gateway -> fake Anthropic -------------------------------------


def sent(fake, number: int = -1) -> dict:
    return fake.requests_to(MESSAGES_PATH)[number].json()


def test_text_completion(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.recorded("messages_text"))
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What is 4200 + 42?"}]
    )
    assert completion.choices[0].message.content == "4200 + 42 = 4242"
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens, completion.usage.total_tokens) == (
        17,
        15,
        32,
    )
    request = claude.requests_to(MESSAGES_PATH)[0]
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.json()["max_tokens"] == 4096


def test_streamed_text_without_usage_chunk(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.recorded("messages_stream_text"))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "What is 4200 + 42?"}], stream=True
    )
    received = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "4200 + 42 = 4242"
    assert received[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in received)
    assert sent(claude)["stream"] is True


def test_streamed_usage_chunk_when_include_usage(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.recorded("messages_stream_parallel_tool_use", 1))
    stream = client.chat.completions.create(
        model=MODEL,
        messages=PARALLEL_PROMPT,
        tools=PARALLEL_TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    received = list(stream)
    assert received[-1].choices == []
    assert (
        received[-1].usage.prompt_tokens,
        received[-1].usage.completion_tokens,
        received[-1].usage.total_tokens,
    ) == (416, 109, 525)
    assert "stream_options" not in sent(claude)


def test_max_tokens_reached_reads_as_length(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.recorded("messages_max_tokens"))
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "List all U.S. states."}], max_tokens=50
    )
    assert completion.choices[0].finish_reason == "length"
    assert sent(claude)["max_tokens"] == 50


def test_parallel_tool_calls_then_tool_results_multi_turn(claude, client):
    # given the recorded two-turn exchange
    claude.on("POST", MESSAGES_PATH, fake_anthropic.conversation("messages_parallel_tool_use", 2))
    messages = list(PARALLEL_PROMPT)
    # when the model asks for two tools at once
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=PARALLEL_TOOLS, max_tokens=16000)
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert [json.loads(call.function.arguments) for call in message.tool_calls] == [
        {"password": "mellon"},
        {"password": "radiance"},
    ]
    # and the client answers both
    messages.append(message)
    secrets = {"mellon": "Welcome to Moria!", "radiance": "Life before Death"}
    for call in message.tool_calls:
        messages.append(
            {
                "role": "tool",
                "tool_call_id": call.id,
                "content": secrets[json.loads(call.function.arguments)["password"]],
            }
        )
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=PARALLEL_TOOLS, max_tokens=16000)
    # then Anthropic got the exact turn it accepted in the recording, and answered
    assert second.choices[0].message.content.startswith("Here are the secrets retrieved for each password")
    assert canonical(sent(claude, 1)["messages"]) == canonical(
        recorded_request("messages_parallel_tool_use", 1)["messages"]
    )


def test_streamed_parallel_tool_calls_reassembled_by_the_sdk(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.recorded("messages_stream_parallel_tool_use", 1, delay=0.001))
    with client.chat.completions.stream(model=MODEL, messages=PARALLEL_PROMPT, tools=PARALLEL_TOOLS) as stream:
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll retrieve the secrets for both passwords you provided."
    assert [(c.id, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == [
        ("toolu_015cUijgET79LXjgeYQerN2h", {"password": "mellon"}),
        ("toolu_01XZTimPexA7h3EVKesnKt5T", {"password": "radiance"}),
    ]


def test_streamed_tool_call_without_arguments_multi_turn(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.conversation("messages_stream_tool_no_args_multiturn", 2))
    messages = [
        {"role": "system", "content": "You must use tools whenever possible."},
        {"role": "user", "content": [{"type": "text", "text": "What's the best language to learn?"}]},
    ]
    with client.chat.completions.stream(
        model=MODEL, messages=messages, tools=NO_ARGS_TOOLS, max_tokens=64000
    ) as stream:
        first = stream.get_final_completion().choices[0].message
    assert [(c.function.name, c.function.arguments) for c in first.tool_calls] == [("best_language_to_learn", "{}")]
    messages += [
        {"role": "assistant", "tool_calls": [c.model_dump() for c in first.tool_calls]},
        {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": [{"type": "text", "text": "Ruby"}]},
    ]
    with client.chat.completions.stream(
        model=MODEL, messages=messages, tools=NO_ARGS_TOOLS, max_tokens=64000
    ) as stream:
        second = stream.get_final_completion().choices[0]
    assert "Ruby" in second.message.content
    assert second.finish_reason == "stop"
    assert canonical(sent(claude, 1)["messages"]) == canonical(
        recorded_request("messages_stream_tool_no_args_multiturn", 1)["messages"]
    )


def test_thinking_returned_and_its_signature_sent_back(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.conversation("messages_thinking", 2))
    first = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": PRIMES}],
        max_tokens=16000,
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 6400}},
    )
    message = first.choices[0].message
    recorded_thinking = json.loads(recordings.response("anthropic", "messages_thinking", 1))["content"][0]
    assert message.content == "3"
    assert message.reasoning_content == recorded_thinking["thinking"]
    assert message.thinking_blocks == [recorded_thinking]
    # the assistant message goes back as the SDK returned it
    second = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": PRIMES}, message, {"role": "user", "content": PRIMES_FOLLOW_UP}],
        max_tokens=16000,
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}},
    )
    assert second.choices[0].message.content == "The primes were: 79, 179, and 379."
    assert canonical(sent(claude, 1)["messages"]) == canonical(recorded_request("messages_thinking", 1)["messages"])


def test_streamed_thinking_and_its_signature_round_trip(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.conversation("messages_stream_thinking", 2))
    thinking_on = {"thinking": {"type": "enabled", "budget_tokens": 6400}}
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": PRIMES}],
        max_tokens=16000,
        stream=True,
        extra_body=thinking_on,
    )
    reasoning, content, blocks = "", "", []
    for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        content += delta.content or ""
        blocks += getattr(delta, "thinking_blocks", None) or []
    recorded_turn = recorded_request("messages_stream_thinking", 1)["messages"][1]["content"]
    assert reasoning == recorded_turn[0]["thinking"]
    assert [(b["thinking"], b["signature"]) for b in blocks] == [
        (recorded_turn[0]["thinking"], recorded_turn[0]["signature"])
    ]
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "user", "content": PRIMES},
            {"role": "assistant", "content": content, "reasoning_content": reasoning, "thinking_blocks": blocks},
            {"role": "user", "content": PRIMES_FOLLOW_UP},
        ],
        max_tokens=16000,
        stream=True,
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 1024}},
    )
    answer = "".join(c.choices[0].delta.content or "" for c in stream)
    assert "79" in answer and "379" in answer
    assert canonical(sent(claude, 1)["messages"]) == canonical(
        recorded_request("messages_stream_thinking", 1)["messages"]
    )


def test_image_url_reaches_anthropic_as_a_url_image_block(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.recorded("messages_image_url_input"))
    url = "https://en.wikipedia.org/static/images/icons/wikipedia.png"
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe the following image in one sentence"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    )
    assert "Wikipedia" in completion.choices[0].message.content
    assert canonical(sent(claude)["messages"]) == canonical(recorded_request("messages_image_url_input")["messages"])


def test_invalid_tool_arguments_are_a_400_and_never_reach_anthropic(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.recorded("messages_text"))
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    with pytest.raises(openai.BadRequestError, match="not valid JSON"):
        client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "r"},
            ],
            tools=NO_ARGS_TOOLS,
        )
    assert claude.requests_to(MESSAGES_PATH) == []


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (
            fake_anthropic.recorded_error("error_400_effort_unsupported"),
            (openai.BadRequestError, 400, None),
        ),
        (
            fake_anthropic.recorded_error("error_401_invalid_x_api_key"),
            (openai.AuthenticationError, 401, "invalid_api_key"),
        ),
        (
            fake_anthropic.error(403, "permission_error", "Your API key does not have permission"),
            (openai.PermissionDeniedError, 403, None),
        ),
        (
            fake_anthropic.recorded_error("error_404_model_not_found", 1),
            (openai.NotFoundError, 404, "model_not_found"),
        ),
        (
            fake_anthropic.error(429, "rate_limit_error", "Rate limited", {"retry-after": "7"}),
            (openai.RateLimitError, 429, "rate_limit_exceeded"),
        ),
        (
            fake_anthropic.error(500, "api_error", "Internal server error"),
            (openai.InternalServerError, 500, None),
        ),
        (
            fake_anthropic.error(529, "overloaded_error", "Overloaded"),
            (openai.InternalServerError, 529, "overloaded"),
        ),
    ],
    ids=["400", "401", "403", "404", "429", "500", "529"],
)
def test_anthropic_errors_reach_the_sdk_with_their_status(claude, client, behaviour, expected):
    exception, status, code = expected
    claude.on("POST", MESSAGES_PATH, behaviour)
    with pytest.raises(exception) as raised:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    error = raised.value
    assert error.status_code == status
    assert error.code == code
    assert error.message.startswith(f"Error code: {status} - ")
    if status == 429:
        assert error.response.headers["retry-after"] == "7"


def test_auth_error_on_a_stream_request_is_an_http_error_not_a_stream(claude, client):
    claude.on("POST", MESSAGES_PATH, fake_anthropic.recorded_error("error_401_invalid_x_api_key_stream"))
    with pytest.raises(openai.AuthenticationError, match="invalid x-api-key"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True)


def test_overloaded_event_mid_stream_raises_in_the_sdk_after_the_text_so_far(claude, client):
    frames = recordings.sse_frames(recordings.raw("anthropic", "messages_stream_text.response.sse"))[:4]
    frames.append(
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    claude.on("POST", MESSAGES_PATH, fake_anthropic.validated(fake_anthropic.reply_stream(frames)))
    received = []
    with pytest.raises(openai.APIError, match="Overloaded"):
        for chunk in client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
        ):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "4200 + 42 ="  # the text before the error event reached the client


def test_model_discovery_follows_pagination(fake_provider):
    fake = fake_provider("claude")
    fake.on(
        "GET",
        "/v1/models",
        fake_anthropic.models_pages(
            [
                {
                    "type": "model",
                    "id": "claude-sonnet-4-20250514",
                    "display_name": "Claude Sonnet 4",
                    "created_at": "2025-05-14T00:00:00Z",
                },
                {
                    "type": "model",
                    "id": "claude-opus-4-20250514",
                    "display_name": "Claude Opus 4",
                    "created_at": "2025-05-14T00:00:00Z",
                },
            ],
            [
                {
                    "type": "model",
                    "id": "claude-3-haiku-20240307",
                    "display_name": "Claude Haiku 3",
                    "created_at": "not a date",
                }
            ],
        ),
    )
    result = probe(route_for(fake, kind="anthropic", key=KEY), timeout=5)
    assert result.status == "healthy"
    assert [(m.id, m.created) for m in result.models] == [
        ("claude-sonnet-4-20250514", 1747180800),
        ("claude-opus-4-20250514", 1747180800),
        ("claude-3-haiku-20240307", None),
    ]
    assert [r.headers.get("x-api-key") for r in fake.requests_to("/v1/models")] == [KEY, KEY]
