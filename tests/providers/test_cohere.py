"""Cohere v2 adapter: translations against recorded traffic, and end to end through the gateway."""

from __future__ import annotations

import json

import openai
import pytest

from backends.probe import probe
from backends.providers.base import SSE_DONE
from backends.providers.cohere import CohereProvider, host
from backends.providers.cohere.request import chat_body
from tests.conftest import route_for
from tests.fakes import cohere as fake_cohere
from tests.fakes import recordings
from tests.fakes.server import reply_json
from tests.providers.streams import collect, feed_in_slices

MODEL = "command-a-03-2025"
WEATHER_TOOL = recordings.interactions("cohere", "v2_chat_tool_call")[0]["request"]["body"]["tools"]
NO_ARGS_TOOL = recordings.interactions("cohere", "v2_chat_stream_tool_no_args_multiturn")[0]["request"]["body"]["tools"]
BERLIN = "What's the weather in Berlin? (52.5200, 13.4050)"


def rec(name: str, index: int | None = None) -> bytes:
    return recordings.response("cohere", name, index)


def frames_json(frames: list[bytes]) -> list[dict]:
    out = []
    for frame in frames:
        payload = frame.removeprefix(b"data: ").strip()
        if payload != b"[DONE]":
            out.append(json.loads(payload))
    return out


def translate_stream(body: bytes, payload: dict | None = None, *, seed: int = 7) -> list[bytes]:
    """Feed the body in random slices, as the network would."""
    stream = CohereProvider().chat_stream(payload or {"model": MODEL, "stream": True})
    return feed_in_slices(stream, body, seed=seed, max_slice=40)


@pytest.fixture
def cohere(fake_provider, gateway):
    """A fake Cohere behind the gateway; returns (fake, OpenAI client)."""
    fake = fake_provider("cohere")
    gateway.route((route_for(fake, kind="cohere", path="/v1"), [MODEL, "command-r7b-12-2024", "embed-v4.0"]))
    return fake, openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


# --- unit: request translation --------------------------------------------------------------


def test_host_accepts_the_seed_url_with_or_without_v1():
    assert host("https://api.cohere.ai/v1") == "https://api.cohere.ai"
    assert host("https://api.cohere.com/") == "https://api.cohere.com"
    assert host("https://api.cohere.com/v1/") == "https://api.cohere.com"


def test_tool_history_translates_to_what_cohere_accepted_in_the_recording():
    recorded = recordings.interactions("cohere", "v2_chat_tool_call")[1]["request"]["body"]
    call = recorded["messages"][1]["tool_calls"][0]
    openai_payload = {
        "model": MODEL,
        "messages": [
            {"role": "user", "content": BERLIN},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": recorded["messages"][2]["content"]},
        ],
        "tools": WEATHER_TOOL,
    }
    body = chat_body(openai_payload)
    fake_cohere.check_chat(body)
    assert body["messages"][1] == recorded["messages"][1]
    assert body["messages"][2] == recorded["messages"][2]
    assert body["tools"] == recorded["tools"]
    assert body["stream"] is False


def test_openai_fields_are_renamed_and_system_turns_merged_first():
    body = chat_body(
        {
            "model": MODEL,
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in German."}]},
            ],
            "top_p": 0.5,
            "stop": "END",
            "max_completion_tokens": 64,
            "stream_options": {"include_usage": True},
            "user": "someone",
            "tools": WEATHER_TOOL,
            "tool_choice": "required",
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        }
    )
    fake_cohere.check_chat(body)
    assert body["messages"][0] == {"role": "system", "content": "Be brief.\n\nAnswer in German."}
    assert (body["p"], body["stop_sequences"], body["max_tokens"]) == (0.5, ["END"], 64)
    assert body["tool_choice"] == "REQUIRED"
    assert body["response_format"] == {"type": "json_object", "json_schema": {"type": "object"}}
    assert "user" not in body and "stream_options" not in body


def test_a_named_tool_choice_offers_only_that_tool_and_requires_it():
    tools = [*WEATHER_TOOL, *NO_ARGS_TOOL]
    body = chat_body(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "x"}],
            "tools": tools,
            "tool_choice": {"type": "function", "function": {"name": "best_language_to_learn"}},
        }
    )
    assert [t["function"]["name"] for t in body["tools"]] == ["best_language_to_learn"]
    assert body["tool_choice"] == "REQUIRED"


# --- unit: responses and streams --------------------------------------------------------------


def test_tool_call_answer_has_tool_calls_finish_reason_plan_and_usage():
    answer = json.loads(CohereProvider().chat_response({"model": MODEL}, rec("v2_chat_tool_call", 1)))
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"latitude":"52.5200","longitude":"13.4050"}',
    }
    assert choice["message"]["reasoning_content"] == "I will use the weather tool to find the weather in Berlin."
    assert answer["usage"] == {
        "prompt_tokens": 1508,
        "completion_tokens": 67,
        "total_tokens": 1575,
        "prompt_tokens_details": {"cached_tokens": 704},
    }


@pytest.mark.parametrize(
    ("cohere_reason", "openai_reason"),
    [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop"), ("MAX_TOKENS", "length"), ("TOOL_CALL", "tool_calls")],
)
def test_finish_reasons_map_in_streams(cohere_reason, openai_reason):
    body = rec("v2_chat_stream_text").replace(
        b'"finish_reason":"COMPLETE"', f'"finish_reason":"{cohere_reason}"'.encode()
    )
    chunks = frames_json(translate_stream(body))
    assert chunks[-1]["choices"][0]["finish_reason"] == openai_reason


def test_finish_reason_error_ends_the_stream_with_an_error_event():
    body = rec("v2_chat_stream_text").replace(b'"finish_reason":"COMPLETE"', b'"finish_reason":"ERROR"')
    frames = translate_stream(body)
    assert frames[-1] == SSE_DONE
    assert "error" in json.loads(frames[-2].removeprefix(b"data: "))


def test_stream_split_anywhere_gives_the_same_parallel_tool_calls():
    body = fake_cohere.chunks_sse("v2_chat_stream_tool_call_chunks_only")
    runs = [frames_json(translate_stream(body, seed=seed)) for seed in (1, 2, 3)]
    assert [c["choices"] for c in runs[0]] == [c["choices"] for c in runs[1]] == [c["choices"] for c in runs[2]]
    calls: dict[int, dict] = {}
    for chunk in runs[0]:
        for call in chunk["choices"][0]["delta"].get("tool_calls", []) if chunk["choices"] else []:
            entry = calls.setdefault(call["index"], {"id": call.get("id"), "arguments": ""})
            entry["arguments"] += call["function"].get("arguments", "")
    assert calls == {
        0: {"id": "weather_e8p4pn45zt0t", "arguments": '{"location": "San Francisco"}'},
        1: {"id": "cityAttractions_pyxssbwnq9fq", "arguments": '{"city": "San Francisco"}'},
    }


def test_stream_cut_before_message_end_ends_with_an_error_then_done():
    body = rec("v2_chat_stream_text")
    frames = translate_stream(body[: body.index(b"event: message-end")])
    assert frames[-1] == SSE_DONE
    assert json.loads(frames[-2].removeprefix(b"data: "))["error"]["code"] == "upstream_stream_error"


def test_errors_keep_their_status_in_openai_shape():
    provider = CohereProvider()
    unauthorized = provider.error(401, rec("error_401_invalid_api_token"))
    assert (unauthorized.status, unauthorized.code) == (401, "invalid_api_key")
    assert unauthorized.message.startswith("Incorrect API key provided")
    too_long = provider.error(400, rec("error_400_context_length"))
    assert too_long.status == 400
    assert too_long.as_dict()["error"]["type"] == "invalid_request_error"
    assert too_long.as_dict()["error"]["code"] == "context_length_exceeded"
    limited = provider.error(429, b'{"id":"x","message":"trial key rate limit"}', {"retry-after": "3"})
    assert (limited.status, limited.retry_after) == (429, 3.0)


# --- end to end through the gateway with the OpenAI SDK ---------------------------------------


def test_text_answer(cohere):
    fake, client = cohere
    fake.on("POST", "/v2/chat", fake_cohere.chat(rec("v2_chat_simple_pydantic")))
    answer = client.chat.completions.create(
        model="command-r7b-12-2024", messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content == "Hello! How can I assist you today?"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (496, 11, 507)
    assert fake.received[0].headers["Authorization"] == "Bearer sk-test-key-0001"


@pytest.mark.parametrize("include_usage", [False, True])
def test_streamed_text_with_and_without_usage(cohere, include_usage):
    fake, client = cohere
    fake.on("POST", "/v2/chat", fake_cohere.chat(rec("v2_chat_stream_text")))
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count from 1 to 3"}], stream=True, **extra
    )
    result = collect(stream)
    assert result["content"] == "Sure! Here's counting from 1 to 3:\n\n1, 2, 3."
    assert result["finish"] == "stop"
    if include_usage:
        assert (result["usage"].prompt_tokens, result["usage"].completion_tokens) == (502, 24)
    else:
        assert result["usage"] is None
    assert "stream_options" not in fake.received[0].json()


def test_multi_turn_tool_call_and_tool_result(cohere):
    fake, client = cohere
    fake.on("POST", "/v2/chat", fake_cohere.chat(rec("v2_chat_tool_call", 1), rec("v2_chat_tool_call", 2)))
    messages = [{"role": "user", "content": BERLIN}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=WEATHER_TOOL)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert json.loads(call.function.arguments) == {"latitude": "52.5200", "longitude": "13.4050"}
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {
            "role": "tool",
            "tool_call_id": call.id,
            "content": "Current weather at 52.5200, 13.4050: 15°C, Wind: 10 km/h",
        },
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=WEATHER_TOOL)
    assert second.choices[0].message.content == "The current weather in Berlin is 15°C with winds of 10 km/h."
    assert second.choices[0].finish_reason == "stop"
    sent = fake.received[1].json()["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "weather_cgvndtjtzzkh"
    assert sent[2] == {"role": "tool", "tool_call_id": "weather_cgvndtjtzzkh", "content": messages[2]["content"]}


def test_parallel_tool_calls_streamed(cohere):
    fake, client = cohere
    fake.on("POST", "/v2/chat", fake_cohere.chat(fake_cohere.chunks_sse("v2_chat_stream_tool_call_chunks_only")))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Weather and attractions in SF?"}], stream=True
    )
    result = collect(stream)
    assert result["finish"] == "tool_calls"
    assert [c["name"] for c in result["tool_calls"].values()] == ["weather", "cityAttractions"]
    assert [json.loads(c["arguments"]) for c in result["tool_calls"].values()] == [
        {"location": "San Francisco"},
        {"city": "San Francisco"},
    ]
    assert result["reasoning"].startswith("I will use the weather tool")


def test_streamed_parameterless_tool_call_over_four_turns(cohere):
    name = "v2_chat_stream_tool_no_args_multiturn"
    fake, client = cohere
    fake.on("POST", "/v2/chat", fake_cohere.chat(*(rec(name, i) for i in (1, 2, 3, 4))))
    system = {"role": "system", "content": "You must use tools whenever possible."}
    messages = [system, {"role": "user", "content": "What's the best language to learn?"}]
    for _ in range(2):
        result = collect(
            client.chat.completions.create(model=MODEL, messages=messages, tools=NO_ARGS_TOOL, stream=True)
        )
        assert result["finish"] == "tool_calls"
        call = result["tool_calls"][0]
        assert json.loads(call["arguments"]) == {}
        messages += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": ""}}
                ],
            },
            {"role": "tool", "tool_call_id": call["id"], "content": "Ruby"},
        ]
        answer = collect(
            client.chat.completions.create(model=MODEL, messages=messages, tools=NO_ARGS_TOOL, stream=True)
        )
        assert answer["finish"] == "stop"
        assert answer["content"] == "Ruby is the best language to learn."
        messages += [
            {"role": "assistant", "content": answer["content"]},
            {"role": "user", "content": "Tell me again: what's the best language to learn?"},
        ]
    assert len(fake.received) == 4
    assert fake.received[3].json()["messages"][2]["tool_calls"][0]["function"]["arguments"] == "{}"


def test_thinking_is_returned_as_reasoning_content(cohere):
    fake, client = cohere
    fake.on("POST", "/v2/chat", fake_cohere.chat(fake_cohere.chunks_sse("v2_chat_stream_reasoning_chunks_only")))
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "2+2?"}], stream=True, reasoning_effort="high"
    )
    result = collect(stream)
    assert result["reasoning"].startswith("The user is asking for the sum of 2 and 2.")
    assert result["content"] == "The answer to 2 + 2 is 4."
    assert fake.received[0].json()["thinking"] == {"type": "enabled"}


def test_error_finish_reason_surfaces_as_an_error(cohere):
    fake, client = cohere
    broken = rec("v2_chat_stream_text").replace(b'"finish_reason":"COMPLETE"', b'"finish_reason":"ERROR"')
    fake.on("POST", "/v2/chat", fake_cohere.chat(broken))
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True)
    with pytest.raises(openai.APIError, match="ERROR"):
        collect(stream)


@pytest.mark.parametrize("stream", [False, True])
def test_bad_key_is_a_401_authentication_error(cohere, stream):
    fake, client = cohere
    fake.on("POST", "/v2/chat", fake_cohere.chat((401, rec("error_401_invalid_api_token"))))
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hello"}], stream=stream)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"


def test_too_many_tokens_is_a_400_context_length_error(cohere):
    fake, client = cohere
    fake.on("POST", "/v2/chat", fake_cohere.chat((400, rec("error_400_context_length"))))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.code == "context_length_exceeded"
    assert "too many tokens" in caught.value.message


def test_embeddings_default_base64_and_float(cohere):
    fake, client = cohere
    recorded = json.loads(rec("v2_embed"))
    fake.on("POST", "/v2/embed", fake_cohere.embed(rec("v2_embed")))
    # The SDK asks for base64 by default and decodes it; the vector must survive float32 packing.
    default = client.embeddings.create(model="embed-v4.0", input="Ruby is a programmer's best friend")
    assert default.data[0].embedding == pytest.approx(recorded["embeddings"]["float"][0], rel=1e-6)
    assert default.usage.prompt_tokens == 7
    floats = client.embeddings.create(
        model="embed-v4.0", input=["Ruby is a programmer's best friend"], encoding_format="float", dimensions=1024
    )
    assert floats.data[0].embedding == recorded["embeddings"]["float"][0]
    sent = fake.received[1].json()
    assert sent["texts"] == ["Ruby is a programmer's best friend"]
    assert (sent["input_type"], sent["embedding_types"], sent["output_dimension"]) == (
        "search_document",
        ["float"],
        1024,
    )


def test_embeddings_input_type_can_be_chosen(cohere):
    fake, client = cohere
    fake.on("POST", "/v2/embed", fake_cohere.embed(rec("v2_embed")))
    client.embeddings.create(model="embed-v4.0", input="query", extra_body={"input_type": "search_query"})
    assert fake.received[0].json()["input_type"] == "search_query"


def test_discovery_follows_pages_and_reads_each_model_s_endpoints(fake_provider):
    fake = fake_provider("cohere")
    fake.on("GET", "/v1/models", fake_cohere.models())
    result = probe(route_for(fake, kind="cohere", path="/v1"), timeout=5)
    assert result.status == "healthy"
    assert {(m.id, m.capability) for m in result.models} == {
        ("command-a-03-2025", "chat"),
        ("rerank-v3.5", "rerank"),
        ("embed-v4.0", "embedding"),
        ("command-r7b-12-2024", "chat"),
        ("command-r", "chat"),
    }
    assert [r.path for r in fake.received] == ["/v1/models", "/v1/models"]


def test_discovery_with_a_bad_key_marks_auth_failed(fake_provider):
    fake = fake_provider("cohere")
    fake.on("GET", "/v1/models", reply_json(json.loads(rec("error_401_invalid_api_token")), status=401))
    result = probe(route_for(fake, kind="cohere", path=""), timeout=5)
    assert result.status == "auth_failed"


def test_error_finish_reason_without_streaming_is_not_a_normal_answer(cohere):
    fake, client = cohere
    broken = rec("v2_chat_simple_pydantic").replace(b'"finish_reason": "COMPLETE"', b'"finish_reason": "ERROR"')
    fake.on("POST", "/v2/chat", fake_cohere.chat(broken))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="command-r7b-12-2024", messages=[{"role": "user", "content": "hello"}])
    assert caught.value.status_code >= 500
