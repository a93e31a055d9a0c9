"""``/v1/responses`` end to end: the official ``openai`` SDK, unmodified, against the real
gateway server and fake providers (a chat-only OpenAI-compatible one replaying recorded chat
answers, an Anthropic one replaying recorded Messages answers, and one that serves the
Responses API itself, which gets the client's bytes).
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.conftest import route_for
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import openai_responses as fake_responses
from tests.fakes import recordings
from tests.fakes.server import reply_bytes, reply_json, reply_stream

MODEL = "gpt-4o"
TOOL = {
    "type": "function",
    "name": "secret_retrieval_tool",
    "description": "A tool that requires a password to retrieve a secret.",
    "parameters": {"type": "object", "properties": {"password": {"type": "string"}}, "required": ["password"]},
}


def sdk(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="client-key", max_retries=0)


@pytest.fixture
def chat_backend(gateway, fake_provider):
    """An OpenAI-compatible backend that only speaks chat completions."""
    fake = fake_provider("vllm")
    gateway.route((route_for(fake), [MODEL]))
    return gateway, fake


@pytest.fixture
def anthropic_backend(gateway, fake_provider):
    fake = fake_provider("anthropic")
    gateway.route((route_for(fake, kind="anthropic", key="sk-ant-test-0001"), [MODEL]))
    return gateway, fake


@pytest.fixture
def native_backend(gateway, fake_provider):
    fake = fake_provider("openai")
    gateway.route((route_for(fake, responses_api=True), [MODEL]))
    return gateway, fake


# --- translated: a chat-only backend ------------------------------------------------------------


def test_text_answer_from_a_chat_backend(chat_backend):
    gateway, fake = chat_backend
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))

    response = sdk(gateway).responses.create(
        model=MODEL, instructions="Answer briefly.", input="What is 4200 + 42?", max_output_tokens=50, temperature=0
    )

    assert response.object == "response" and response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == "\\(4200 + 42 = 4242\\)."
    assert response.usage.input_tokens == 16 and response.usage.output_tokens == 12
    assert response.usage.total_tokens == 28
    sent = fake.requests_to("/v1/chat/completions")[0].json()
    assert sent["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "What is 4200 + 42?"},
    ]
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0
    ctx = gateway.recorder.wait_for(1)[0]
    assert ctx.dialect == "openai.responses" and ctx.usage.prompt_tokens == 16


def test_function_call_round_trip(chat_backend):
    gateway, fake = chat_backend
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_parallel_tool_calls", 1)))
    client = sdk(gateway)

    first = client.responses.create(model=MODEL, input="Secrets for mellon and radiance?", tools=[TOOL])

    calls = [item for item in first.output if item.type == "function_call"]
    assert [json.loads(call.arguments)["password"] for call in calls] == ["mellon", "radiance"]
    assert all(call.name == "secret_retrieval_tool" and call.call_id.startswith("call_") for call in calls)
    sent = fake.requests_to("/v1/chat/completions")[0].json()
    assert sent["tools"] == [
        {
            "type": "function",
            "function": {
                "name": TOOL["name"],
                "description": TOOL["description"],
                "parameters": TOOL["parameters"],
            },
        }
    ]

    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    outputs = [{"type": "function_call_output", "call_id": call.call_id, "output": "42"} for call in calls]
    history = [{"role": "user", "content": "Secrets for mellon and radiance?"}]
    history += [call.model_dump(exclude_none=True) for call in calls]
    second = client.responses.create(model=MODEL, input=history + outputs, tools=[TOOL], store=False)

    assert second.output_text
    turn = fake.requests_to("/v1/chat/completions")[1].json()["messages"]
    assert turn[1]["role"] == "assistant"
    assert [c["id"] for c in turn[1]["tool_calls"]] == [call.call_id for call in calls]
    assert turn[2:] == [{"role": "tool", "tool_call_id": call.call_id, "content": "42"} for call in calls]


def test_text_format_json_schema_reaches_chat_as_response_format(chat_backend):
    gateway, fake = chat_backend
    answer = json.loads(recordings.response("openai", "chat_text"))
    answer["choices"][0]["message"]["content"] = '{"sum": 4242}'
    fake.on("POST", "/v1/chat/completions", reply_json(answer))

    class Sum(BaseModel):
        sum: int

    parsed = sdk(gateway).responses.parse(model=MODEL, input="What is 4200 + 42?", text_format=Sum)

    assert parsed.output_parsed == Sum(sum=4242)
    sent = fake.requests_to("/v1/chat/completions")[0].json()
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["name"] == "Sum"
    assert sent["response_format"]["json_schema"]["schema"]["properties"] == {
        "sum": {"title": "Sum", "type": "integer"}
    }


def test_stream_deltas_assemble_to_the_full_text(chat_backend):
    gateway, fake = chat_backend
    body = recordings.response("openai", "chat_stream_text")
    fake.on("POST", "/v1/chat/completions", reply_stream(recordings.sse_frames(body)))

    with sdk(gateway).responses.stream(model=MODEL, input="What is 4200 + 42?") as stream:
        events = list(stream)
        final = stream.get_final_response()

    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    deltas = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert deltas and final.output_text == deltas
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.usage is not None and final.usage.output_tokens > 0
    sent = fake.requests_to("/v1/chat/completions")[0].json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_streamed_function_call_arguments(chat_backend):
    gateway, fake = chat_backend
    body = recordings.response("openai", "chat_stream_parallel_tool_calls", 1)
    fake.on("POST", "/v1/chat/completions", reply_stream(recordings.sse_frames(body)))

    with sdk(gateway).responses.stream(model=MODEL, input="Secrets?", tools=[TOOL]) as stream:
        events = list(stream)
        final = stream.get_final_response()

    assert any(event.type == "response.function_call_arguments.delta" for event in events)
    calls = [item for item in final.output if item.type == "function_call"]
    assert {json.loads(call.arguments)["password"] for call in calls} == {"mellon", "radiance"}


def test_built_in_tools_are_refused_for_a_translated_backend(chat_backend):
    gateway, fake = chat_backend

    with pytest.raises(openai.BadRequestError) as refused:
        sdk(gateway).responses.create(model=MODEL, input="news?", tools=[{"type": "web_search"}])

    assert refused.value.status_code == 400
    assert refused.value.body["param"] == "tools[0]" and "web_search" in refused.value.body["message"]
    assert fake.received == []


def test_upstream_errors_come_back_in_openai_shape(chat_backend):
    gateway, fake = chat_backend
    fake.on(
        "POST",
        "/v1/chat/completions",
        reply_bytes(recordings.response("openai", "error_401_invalid_api_key"), status=401),
    )

    with pytest.raises(openai.AuthenticationError) as failed:
        sdk(gateway).responses.create(model=MODEL, input="hi")

    assert failed.value.status_code == 401
    assert failed.value.body["code"] == "invalid_api_key"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"[1, 2]", None),
        (b'"just a string"', None),
        (b'{"model": 7, "input": "hi"}', "model"),
        (b'{"model": "gpt-4o", "input": 7}', "input"),
        (b'{"model": "gpt-4o", "input": [7]}', "input[0]"),
        (b'{"model": "gpt-4o", "input": [{"type": "message", "role": "pilot", "content": "x"}]}', "input[0].role"),
        (b'{"model": "gpt-4o", "input": "hi", "tools": {"a": 1}}', "tools"),
        (b'{"model": "gpt-4o", "input": "hi", "text": {"format": {"type": "json_schema"}}}', "text.format.name"),
        (b'{"model": "gpt-4o", "input": "hi", "max_output_tokens": "many"}', "max_output_tokens"),
        (b'{"model": "gpt-4o", "input": "hi", "reasoning": {"effort": "huge"}}', "reasoning.effort"),
        (b'{"model": "gpt-4o", "input": [{"type": "function_call_output", "output": "x"}]}', "input[0].call_id"),
        (b"{not json", None),
    ],
)
def test_hostile_input_is_a_400_never_a_500(chat_backend, body, param):
    gateway, fake = chat_backend

    answer = httpx.post(f"{gateway.url}/v1/responses", content=body, headers={"content-type": "application/json"})

    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert fake.received == []


# --- translated: an Anthropic backend ----------------------------------------------------------


def test_text_and_tools_from_an_anthropic_backend(anthropic_backend):
    gateway, fake = anthropic_backend
    fake.on("POST", "/v1/messages", fake_anthropic.recorded("messages_parallel_tool_use", 1))

    response = sdk(gateway).responses.create(model=MODEL, input="Secrets for mellon and radiance?", tools=[TOOL])

    assert response.output_text == "I'll retrieve the secrets for both passwords you provided."
    calls = [item for item in response.output if item.type == "function_call"]
    assert [call.call_id for call in calls] == ["toolu_01BUvqBj8Yb34pNAbCJJY1oc", "toolu_01VPuQJ1LonDBYXrr8pqPkqQ"]
    assert response.usage.input_tokens == 416 and response.usage.output_tokens == 109
    sent = fake.requests_to("/v1/messages")[0].json()
    assert sent["tools"][0]["input_schema"] == TOOL["parameters"]


def test_stream_from_an_anthropic_backend(anthropic_backend):
    gateway, fake = anthropic_backend
    fake.on("POST", "/v1/messages", fake_anthropic.recorded("messages_stream_text"))

    with sdk(gateway).responses.stream(model=MODEL, input="What is 4200 + 42?") as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()

    assert text == "4200 + 42 = 4242" == final.output_text
    assert final.usage.input_tokens == 17 and final.usage.output_tokens == 15


def test_anthropic_errors_come_back_in_openai_shape(anthropic_backend):
    gateway, fake = anthropic_backend
    fake.on("POST", "/v1/messages", fake_anthropic.recorded_error("error_404_model_not_found", 1))

    with pytest.raises(openai.NotFoundError) as failed:
        sdk(gateway).responses.create(model=MODEL, input="hi")

    assert failed.value.status_code == 404
    assert isinstance(failed.value.body, dict) and failed.value.body["message"]


# --- passthrough: a backend that serves the Responses API ---------------------------------------


def test_create_passes_the_bytes_through_and_accounts_usage(native_backend):
    gateway, fake = native_backend
    upstream = recordings.response("openai", "responses_create")  # the documented example
    fake.on("POST", "/v1/responses", fake_responses.answer(upstream))
    body = b'{"model": "gpt-4o", "input": "Tell me a bedtime story.", "tools": [{"type": "web_search"}]}'

    answer = httpx.post(f"{gateway.url}/v1/responses", content=body, headers={"authorization": "Bearer client-key"})
    response = sdk(gateway).responses.create(model=MODEL, input="Tell me a bedtime story.")

    assert answer.status_code == 200 and answer.content == upstream
    assert fake.requests_to("/v1/responses")[0].body == body
    assert fake.requests_to("/v1/responses")[0].headers["Authorization"] == "Bearer sk-test-key-0001"
    assert response.output_text == fake_responses.TEXT and response.id == fake_responses.RESPONSE_ID
    usage = gateway.recorder.wait_for(2)[0].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (36, 87)
    assert (usage.cached_tokens, usage.reasoning_tokens) == (4, 9)
    assert fake.requests_to("/v1/chat/completions") == []


def test_stream_passes_the_events_through(native_backend):
    gateway, fake = native_backend
    frames = recordings.sse_frames(recordings.response("openai", "responses_stream_text"))
    fake.on("POST", "/v1/responses", fake_responses.streamed(frames))

    with httpx.stream(
        "POST", f"{gateway.url}/v1/responses", json={"model": MODEL, "input": "story", "stream": True}
    ) as answer:
        relayed = b"".join(answer.iter_raw())
    with sdk(gateway).responses.stream(model=MODEL, input="story") as stream:
        final = stream.get_final_response()

    assert relayed == b"".join(frames)
    assert final.output_text == fake_responses.TEXT
    usage = gateway.recorder.wait_for(2)[0].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (36, 87)


def test_passthrough_errors_keep_their_status(native_backend):
    gateway, fake = native_backend
    error = {
        "error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
    }
    fake.on("POST", "/v1/responses", reply_json(error, status=400))

    with pytest.raises(openai.BadRequestError) as failed:
        sdk(gateway).responses.create(model=MODEL, input="hi")

    assert failed.value.body["code"] == "rate_limit_exceeded"


def test_a_passthrough_error_that_echoes_the_backend_key_does_not_reach_the_client(native_backend):
    gateway, fake = native_backend
    echoed = {"error": {"message": "Incorrect API key provided: sk-test-key-0001.", "type": "invalid_request_error"}}
    fake.on("POST", "/v1/responses", reply_json(echoed, status=401))

    answer = httpx.post(
        f"{gateway.url}/v1/responses", json={"model": MODEL, "input": "hi"}, headers={"authorization": "Bearer k"}
    )

    assert answer.status_code == 401
    assert "sk-test-key-0001" not in answer.text and "Incorrect API key provided" in answer.json()["error"]["message"]


def test_a_dropped_field_is_logged_once_per_backend(chat_backend, caplog):
    gateway, fake = chat_backend
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    client = sdk(gateway)

    with caplog.at_level("WARNING", logger="gateway.responses_view"):
        for _ in range(2):
            client.responses.create(model=MODEL, input="hi", truncation="auto", text={"verbosity": "low"})

    logged = [r.getMessage() for r in caplog.records if "cannot take these Responses fields" in r.getMessage()]
    assert logged == [
        "responses ingress: backend vllm cannot take these Responses fields, dropped: text.verbosity, truncation"
    ]


def test_failover_from_a_responses_backend_to_a_chat_backend_translates(gateway, fake_provider):
    native = fake_provider("openai")
    chat = fake_provider("vllm")
    gateway.route((route_for(native, responses_api=True, priority=1), [MODEL]), (route_for(chat, priority=2), [MODEL]))
    native.on(
        "POST", "/v1/responses", reply_json({"error": {"message": "overloaded", "type": "server_error"}}, status=503)
    )
    chat.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))

    response = sdk(gateway).responses.create(model=MODEL, input="What is 4200 + 42?")

    assert response.output_text == "\\(4200 + 42 = 4242\\)." and response.id.startswith("resp_")
    assert len(native.requests_to("/v1/responses")) == 1
    assert chat.requests_to("/v1/chat/completions")[0].json()["messages"][-1]["content"] == "What is 4200 + 42?"


def test_a_request_only_a_responses_backend_can_take_is_refused_on_failover(gateway, fake_provider):
    native = fake_provider("openai")
    chat = fake_provider("vllm")
    gateway.route((route_for(native, responses_api=True, priority=1), [MODEL]), (route_for(chat, priority=2), [MODEL]))
    native.on(
        "POST", "/v1/responses", reply_json({"error": {"message": "overloaded", "type": "server_error"}}, status=503)
    )

    with pytest.raises(openai.BadRequestError) as refused:
        sdk(gateway).responses.create(model=MODEL, input="news?", tools=[{"type": "web_search"}])

    assert refused.value.body["param"] == "tools[0]"
    assert chat.received == []


def test_a_refusal_on_failover_keeps_its_own_code(gateway, fake_provider):
    # The store is off: only the Responses backend, which keeps its own ids, could continue the
    # conversation; when it fails, the chat backend's attempt is refused with the store's code.
    native = fake_provider("openai")
    chat = fake_provider("vllm")
    gateway.route((route_for(native, responses_api=True, priority=1), [MODEL]), (route_for(chat, priority=2), [MODEL]))
    native.on(
        "POST", "/v1/responses", reply_json({"error": {"message": "overloaded", "type": "server_error"}}, status=503)
    )

    with pytest.raises(openai.BadRequestError) as refused:
        sdk(gateway).responses.create(model=MODEL, input="and then?", previous_response_id="resp_earlier")

    assert refused.value.body["code"] == "responses_store_disabled"
    assert refused.value.body["param"] == "previous_response_id"
    assert len(native.requests_to("/v1/responses")) == 1 and chat.received == []


def test_a_stream_cut_by_the_upstream_ends_in_a_failed_response(chat_backend):
    gateway, fake = chat_backend
    frames = recordings.sse_frames(recordings.response("openai", "chat_stream_text"))
    fake.on("POST", "/v1/chat/completions", reply_stream(frames, drop_after=3))

    with sdk(gateway).responses.stream(model=MODEL, input="What is 4200 + 42?") as stream:
        kinds = [event.type for event in stream]
        with pytest.raises(RuntimeError):
            stream.get_final_response()

    assert "response.output_text.delta" in kinds
    assert kinds[-2:] == ["error", "response.failed"]
