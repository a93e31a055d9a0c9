"""Ollama native adapter: translations against recorded traffic, and end to end through the gateway."""

from __future__ import annotations

import base64
import json

import openai
import pytest

from backends.probe import probe
from backends.providers.base import SSE_DONE
from backends.providers.ollama import OllamaProvider, base_url
from backends.providers.ollama.request import chat_body
from tests.conftest import route_for
from tests.fakes import ollama as fake_ollama
from tests.fakes import recordings
from tests.fakes.server import reply_json
from tests.providers.streams import collect, feed_in_slices

MODEL = "gemma3:1b"
LOCAL_TOOLS = "openai_compat_stream_tools_multiturn_local"
CLOUD_TOOLS = "openai_compat_stream_tools_multiturn_cloud"
# providers.md §4.3, real 400 from a model without tool support.
NO_TOOLS = b'{"error":"registry.ollama.ai/library/gemma3:1b does not support tools"}'


def rec(name: str, index: int | None = None) -> bytes:
    return recordings.response("ollama", name, index)


def native(name: str, index: int, model: str = "qwen3") -> bytes:
    return fake_ollama.to_native(rec(name, index), model=model)


def recorded_request(name: str, index: int) -> dict:
    return recordings.interactions("ollama", name)[index]["request"]["body"]


def frames_json(frames: list[bytes]) -> list[dict]:
    return [json.loads(f.removeprefix(b"data: ")) for f in frames if f != SSE_DONE]


def translate_stream(body: bytes, payload: dict | None = None, *, seed: int = 3) -> list[bytes]:
    """Feed NDJSON in random slices, splitting lines and UTF-8 sequences anywhere."""
    stream = OllamaProvider().chat_stream(payload or {"model": MODEL, "stream": True})
    return feed_in_slices(stream, body, seed=seed, max_slice=30)


@pytest.fixture
def ollama(fake_provider, gateway):
    """A local fake Ollama (no key) behind the gateway; returns (fake, OpenAI client)."""
    fake = fake_provider("ollama")
    gateway.route((route_for(fake, kind="ollama", key="", path=""), [MODEL, "qwen3", "nomic-embed-text"]))
    return fake, openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


# --- unit --------------------------------------------------------------------------------------


def test_base_url_strips_v1_and_api():
    assert base_url("http://host:11434/v1") == "http://host:11434"
    assert base_url("http://host:11434/api/") == "http://host:11434"
    assert base_url("https://ollama.com") == "https://ollama.com"


def test_recorded_openai_history_becomes_a_valid_native_request():
    payload = recorded_request(LOCAL_TOOLS, 3)
    body = chat_body(payload)
    fake_ollama.check_chat(body)
    assistant, tool = body["messages"][1], body["messages"][2]
    assert assistant["tool_calls"] == [
        {
            "function": {"name": "weather", "arguments": {"latitude": "52.5200", "longitude": "13.4050"}},
            "id": "call_blqyt530",
        }
    ]
    assert assistant["thinking"].startswith("Okay, the user is asking for the weather in Berlin")
    assert tool == {
        "role": "tool",
        "content": "Current weather at 52.5200, 13.4050: 15°C, Wind: 10 km/h",
        "tool_name": "weather",
        "tool_call_id": "call_blqyt530",
    }
    assert body["stream"] is True and "stream_options" not in body


def test_sampling_fields_go_into_options_and_formats_map():
    body = chat_body(
        {
            "model": MODEL,
            "messages": [{"role": "user", "content": "x"}],
            "temperature": 0,
            "top_p": 0.9,
            "seed": 1,
            "stop": "END",
            "max_tokens": 50,
            "response_format": {"type": "json_object"},
        }
    )
    fake_ollama.check_chat(body)
    assert body["options"] == {"temperature": 0, "top_p": 0.9, "seed": 1, "num_predict": 50, "stop": ["END"]}
    assert body["format"] == "json"
    assert body["stream"] is False
    schema = recorded_request("openai_compat_json_schema_local", 0)["response_format"]
    assert (
        chat_body({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "response_format": schema})["format"]
        == schema["json_schema"]["schema"]
    )


def test_data_url_images_become_base64_images():
    png = base64.b64encode(b"\x89PNG fake").decode()
    body = chat_body(
        {
            "model": MODEL,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What is this?"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                    ],
                }
            ],
        }
    )
    fake_ollama.check_chat(body)
    assert body["messages"][0] == {"role": "user", "content": "What is this?", "images": [png]}


def test_stream_lines_split_anywhere_give_the_recorded_text():
    frames = translate_stream(rec("native_chat_stream"))
    chunks = frames_json(frames)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Okay, here we go!\n\n1, 2, 3, 4, 5\n"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert frames[-1] == SSE_DONE


def test_multibyte_characters_survive_any_split():
    body = rec("native_pull_stream", 2)
    for seed in range(5):
        chunks = frames_json(translate_stream(body, seed=seed))
        assert "😊" in "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])


def test_tool_calls_force_finish_reason_tool_calls_without_streaming():
    answer = json.loads(OllamaProvider().chat_response({"model": "qwen3"}, native(LOCAL_TOOLS, 1)))
    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"]["arguments"] == '{"latitude":"52.5200","longitude":"13.4050"}'
    assert choice["message"]["tool_calls"][0]["id"] == "call_blqyt530"


def test_an_error_line_mid_stream_ends_with_an_error_event_then_done():
    lines = rec("native_chat_stream").splitlines(keepends=True)
    body = b"".join(lines[:5]) + b'{"error":"an error was encountered while running the model"}\n' + b"".join(lines[5:])
    frames = translate_stream(body)
    assert frames[-1] == SSE_DONE
    assert json.loads(frames[-2].removeprefix(b"data: "))["error"]["message"].startswith("an error was encountered")


def test_stream_without_done_object_ends_with_an_error_then_done():
    lines = rec("native_chat_stream").splitlines(keepends=True)
    frames = translate_stream(b"".join(lines[:-1]))
    assert json.loads(frames[-2].removeprefix(b"data: "))["error"]["code"] == "upstream_stream_error"
    assert frames[-1] == SSE_DONE


def test_errors_keep_status_in_openai_shape():
    provider = OllamaProvider()
    unsupported = provider.error(400, NO_TOOLS)
    assert (unsupported.status, unsupported.message) == (
        400,
        "registry.ollama.ai/library/gemma3:1b does not support tools",
    )
    assert unsupported.as_dict()["error"]["type"] == "invalid_request_error"
    cloud = provider.error(401, rec("openai_compat_error_401_cloud"))
    assert (cloud.status, cloud.message, cloud.code) == (401, "Unauthorized", "invalid_api_key")


# --- end to end through the gateway with the OpenAI SDK ---------------------------------------


def test_text_answer_without_streaming(ollama):
    fake, client = ollama
    fake.on("POST", "/api/chat", fake_ollama.chat(rec("native_chat_stream")))
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Count from 1 to 5"}], max_tokens=50, temperature=0
    )
    assert answer.choices[0].message.content == "Okay, here we go!\n\n1, 2, 3, 4, 5\n"
    assert answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (16, 22, 38)
    sent = fake.received[0]
    assert "Authorization" not in sent.headers
    assert sent.json()["options"] == {"temperature": 0, "num_predict": 50}


@pytest.mark.parametrize("include_usage", [False, True])
def test_streamed_text_with_and_without_usage(ollama, include_usage):
    fake, client = ollama
    fake.on("POST", "/api/chat", fake_ollama.chat(rec("native_chat_format_json")))
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "How many feet are in a nautical mile? Respond with JSON."}],
        response_format={"type": "json_object"},
        stream=True,
        **extra,
    )
    result = collect(stream)
    assert json.loads(result["content"]) == {"answer": "600"}
    assert result["finish"] == "stop"
    if include_usage:
        assert (result["usage"].prompt_tokens, result["usage"].completion_tokens) == (25, 9)
    else:
        assert result["usage"] is None
    assert fake.received[0].json()["format"] == "json"


def test_multi_turn_tool_calls_with_thinking_streamed(ollama):
    """The recorded four-turn qwen3 conversation, replayed natively and driven by the SDK."""
    fake, client = ollama
    fake.on("POST", "/api/chat", fake_ollama.chat(*(native(LOCAL_TOOLS, i) for i in (1, 2, 3, 4))))
    first = recorded_request(LOCAL_TOOLS, 0)
    messages = list(first["messages"])
    kwargs = {"model": "qwen3", "tools": first["tools"], "stream": True, "stream_options": {"include_usage": True}}
    for city in ("Berlin", "Paris"):
        call = collect(client.chat.completions.create(messages=messages, **kwargs))
        assert call["finish"] == "tool_calls"
        assert call["reasoning"]
        tool_call = call["tool_calls"][0]
        assert tool_call["name"] == "weather" and json.loads(tool_call["arguments"])["latitude"]
        messages += [
            {
                "role": "assistant",
                "content": call["content"],
                "reasoning_content": call["reasoning"],
                "tool_calls": [
                    {
                        "id": tool_call["id"],
                        "type": "function",
                        "function": {"name": "weather", "arguments": tool_call["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": tool_call["id"], "content": f"Current weather in {city}: 15°C"},
        ]
        answer = collect(client.chat.completions.create(messages=messages, **kwargs))
        assert answer["finish"] == "stop"
        assert answer["content"] and answer["usage"].completion_tokens > 0
        messages += [{"role": "assistant", "content": answer["content"]}, {"role": "user", "content": "And Paris?"}]
    history = fake.received[3].json()["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant", "user", "assistant", "tool"]
    assert history[5]["tool_calls"][0]["function"]["arguments"] == {"latitude": "48.8575", "longitude": "2.3514"}
    assert history[6]["tool_name"] == "weather"


def test_parallel_tool_calls_without_streaming(ollama):
    """Two recorded Ollama Cloud tool calls (Berlin, Paris) answered in one native turn."""
    fake, client = ollama
    calls = [
        json.loads(native(CLOUD_TOOLS, i, "gpt-oss:120b").splitlines()[-2])["message"]["tool_calls"][0] for i in (1, 3)
    ]
    turn = fake_ollama.ndjson(
        {"model": "qwen3", "message": {"role": "assistant", "content": "", "tool_calls": calls}, "done": False},
        {
            "model": "qwen3",
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "prompt_eval_count": 169,
            "eval_count": 55,
        },
    )
    fake.on("POST", "/api/chat", fake_ollama.chat(turn))
    answer = client.chat.completions.create(
        model="qwen3", messages=[{"role": "user", "content": "Weather in Berlin and Paris?"}], tools=TOOLS
    )
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.id for c in choice.message.tool_calls] == ["call_x7rn5sl5", "call_5zat23rg"]
    assert [json.loads(c.function.arguments)["latitude"] for c in choice.message.tool_calls] == ["52.5200", "48.8575"]


TOOLS = recordings.interactions("ollama", "openai_compat_tool_call_local")[0]["request"]["body"]["tools"]


def test_thinking_without_streaming_is_reasoning_content(ollama):
    fake, client = ollama
    fake.on("POST", "/api/chat", fake_ollama.chat(native(LOCAL_TOOLS, 2)))
    answer = client.chat.completions.create(
        model="qwen3", messages=[{"role": "user", "content": "weather?"}], reasoning_effort="medium"
    )
    message = answer.choices[0].message
    assert message.reasoning_content.startswith("Okay")
    assert message.content and answer.choices[0].finish_reason == "stop"
    assert fake.received[0].json()["think"] is True


def test_model_without_tool_support_is_a_400(ollama):
    fake, client = ollama
    fake.on("POST", "/api/chat", fake_ollama.chat((400, NO_TOOLS)))
    with pytest.raises(openai.BadRequestError, match="does not support tools"):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], tools=TOOLS, stream=True
        )


def test_cloud_key_is_sent_as_bearer_and_a_bad_one_is_a_401(fake_provider, gateway):
    fake = fake_provider("ollama-cloud")
    gateway.route((route_for(fake, kind="ollama", key="ollama-cloud-key", path="/api"), ["gpt-oss:120b"]))
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)
    fake.on("POST", "/api/chat", fake_ollama.chat((401, b'{"error":"Unauthorized"}'), key_required=True))
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-oss:120b", messages=[{"role": "user", "content": "x"}])
    assert fake.received[0].headers["Authorization"] == "Bearer ollama-cloud-key"


def test_error_mid_stream_reaches_the_client(ollama):
    fake, client = ollama
    lines = rec("native_chat_stream").splitlines(keepends=True)
    body = b"".join(lines[:5]) + b'{"error":"an error was encountered while running the model"}\n'
    fake.on("POST", "/api/chat", fake_ollama.chat(body))
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True)
    with pytest.raises(openai.APIError, match="an error was encountered"):
        collect(stream)


def test_embeddings(ollama):
    fake, client = ollama
    recorded = json.loads(rec("native_embed"))
    fake.on("POST", "/api/embed", fake_ollama.embed(rec("native_embed")))
    result = client.embeddings.create(model="nomic-embed-text", input="Hello world")
    assert result.data[0].embedding == pytest.approx(recorded["embeddings"][0], rel=1e-6)
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (2, 2)
    assert fake.received[0].json() == {"model": "nomic-embed-text", "input": ["Hello world"]}


def test_discovery_lists_chat_and_embedding_models(fake_provider):
    fake = fake_provider("ollama")
    fake.on("GET", "/api/tags", fake_ollama.tags())
    result = probe(route_for(fake, kind="ollama", key="", path="/v1"), timeout=5)
    assert result.status == "healthy"
    # This server's /api/tags has no ``capabilities``: the BERT family says embedding, and
    # nothing says what the others are for (unknown: listed as chat, refused nowhere).
    assert {(m.id, m.capability) for m in result.models} == {
        ("gemma3:1b", ""),
        ("nomic-embed-text:latest", "embedding"),
        ("qwen3:latest", ""),
    }
    assert all(m.created and m.created > 1_700_000_000 for m in result.models)
    assert [r.path for r in fake.received] == ["/api/tags"]  # no /api/show per model


def test_discovery_reads_the_capabilities_newer_servers_list(fake_provider):
    # ListModelResponse.Capabilities (``capabilities,omitempty``) on servers that send it.
    tags = json.loads(json.dumps(fake_ollama.TAGS))
    said = {
        "gemma3:1b": ["completion", "vision"],
        "nomic-embed-text:latest": ["embedding"],
        "qwen3:latest": ["completion", "tools", "thinking"],
    }
    for entry in tags["models"]:
        entry["capabilities"] = said[entry["name"]]
    tags["models"].append(
        {
            "name": "x/z-image-turbo:latest",
            "model": "x/z-image-turbo:latest",
            "modified_at": "2025-08-21T10:00:00Z",
            "size": 12000000000,
            "digest": "4f1b2c",
            "details": {"format": "safetensors", "family": "", "families": None, "parameter_size": "6B"},
            "capabilities": ["image"],
        }
    )
    fake = fake_provider("ollama")
    fake.on("GET", "/api/tags", reply_json(tags))
    result = probe(route_for(fake, kind="ollama", key="", path=""), timeout=5)
    assert {(m.id, m.capability) for m in result.models} == {
        ("gemma3:1b", "chat"),
        ("nomic-embed-text:latest", "embedding"),
        ("qwen3:latest", "chat"),
        ("x/z-image-turbo:latest", "image"),
    }
