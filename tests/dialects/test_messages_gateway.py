"""``/v1/messages`` end to end: the official ``anthropic`` SDK, unmodified, against the real
gateway server and fake providers replaying recorded answers.

The routes are the real ones (``gateway.app.ROUTES``, the ingress on the ``Gateway``).
"""

from __future__ import annotations

import json
import threading
import time

import anthropic
import httpx
import pytest

from tests.conftest import route_for
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import recordings
from tests.fakes.server import hang, reply_bytes, reply_json, reply_stream

MODEL = "gpt-4o"
TOOL = {
    "name": "secret_retrieval_tool",
    "description": "A tool that requires a password to retrieve a secret.",
    "input_schema": {"type": "object", "properties": {"password": {"type": "string"}}, "required": ["password"]},
}


@pytest.fixture
def messages_routes(gateway):
    return gateway.gateway.messages


@pytest.fixture
def openai_backend(gateway, fake_provider, messages_routes):
    fake = fake_provider("openai")
    gateway.route((route_for(fake), [MODEL]))
    return gateway, fake


def sdk(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="client-key", max_retries=0)


def test_messages_create_with_tools_reaches_an_openai_backend(openai_backend):
    gateway, fake = openai_backend
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_parallel_tool_calls", 1)))

    message = sdk(gateway).messages.create(
        model=MODEL,
        max_tokens=512,
        system="Use parallel tool calling.",
        tools=[TOOL],
        tool_choice={"type": "auto", "disable_parallel_tool_use": False},
        messages=[{"role": "user", "content": "Secrets for mellon and radiance?"}],
    )

    assert message.stop_reason == "tool_use"
    tools = [block for block in message.content if block.type == "tool_use"]
    assert len(tools) >= 2 and all(block.name == "secret_retrieval_tool" for block in tools)
    assert message.model == MODEL
    sent = fake.requests_to("/v1/chat/completions")[0].json()
    assert sent["messages"][0] == {"role": "system", "content": "Use parallel tool calling."}
    assert sent["tools"][0]["function"]["parameters"] == TOOL["input_schema"]
    assert sent["max_tokens"] == 512 and sent["tool_choice"] == "auto"


def test_messages_stream_from_an_openai_stream(openai_backend):
    gateway, fake = openai_backend
    body = recordings.response("openai", "chat_stream_parallel_tool_calls", 1)
    fake.on("POST", "/v1/chat/completions", reply_stream(recordings.sse_frames(body)))

    with sdk(gateway).messages.stream(
        model=MODEL, max_tokens=512, tools=[TOOL], messages=[{"role": "user", "content": "Secrets?"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()

    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.stop_reason == "tool_use"
    inputs = [block.input for block in final.content if block.type == "tool_use"]
    assert {value["password"] for value in inputs} == {"mellon", "radiance"}
    assert final.usage.output_tokens > 0
    sent = fake.requests_to("/v1/chat/completions")[0].json()
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_text_answer_with_images_and_thinking_reasoning(openai_backend):
    gateway, fake = openai_backend
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("deepseek", "reasoner_nonstream")))
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

    message = sdk(gateway).messages.create(
        model=MODEL,
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 2048},
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
                    {"type": "text", "text": "What is this?"},
                ],
            }
        ],
    )

    assert [block.type for block in message.content] == ["thinking", "text"]
    sent = fake.requests_to("/v1/chat/completions")[0].json()
    assert sent["reasoning_effort"] == "medium"
    assert sent["messages"][0]["content"][0]["image_url"]["url"] == f"data:image/png;base64,{png}"


def test_errors_come_in_anthropic_shape(openai_backend):
    gateway, fake = openai_backend
    fake.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "slow down", "type": "x"}}, status=429))
    client = sdk(gateway)

    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "system", "content": "x"}])
    assert bad.value.body["error"]["type"] == "invalid_request_error"

    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert limited.value.body == {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}

    with httpx.Client(base_url=gateway.url) as raw:
        answer = raw.post("/v1/messages", content=b"{not json")
        assert answer.status_code == 400 and answer.json()["type"] == "error"
        assert raw.get("/v1/messages").status_code == 405


def test_unknown_model_without_default_is_not_found(gateway, fake_provider, messages_routes):
    gateway.route()
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk(gateway).messages.create(model="nope", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert missing.value.body["error"]["type"] == "not_found_error"


def test_count_tokens_estimate_for_an_openai_backend(openai_backend):
    gateway, _ = openai_backend
    counted = sdk(gateway).messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "x" * 400}])
    assert counted.input_tokens == 103


def test_count_tokens_is_forwarded_to_an_anthropic_backend(gateway, fake_provider, messages_routes):
    fake = fake_provider("anthropic")
    fake.on("POST", "/v1/messages/count_tokens", reply_json({"input_tokens": 14}))
    gateway.route((route_for(fake, kind="anthropic", key="sk-ant-test-key-0001"), ["claude-sonnet-4-0"]))

    counted = sdk(gateway).messages.count_tokens(
        model="claude-sonnet-4-0", messages=[{"role": "user", "content": "Hello"}]
    )

    assert counted.input_tokens == 14
    received = fake.requests_to("/v1/messages/count_tokens")[0]
    assert received.headers["x-api-key"] == "sk-ant-test-key-0001"
    assert json.loads(received.body)["messages"] == [{"role": "user", "content": "Hello"}]


def test_usage_is_accounted_for_a_translated_stream(openai_backend):
    gateway, fake = openai_backend
    body = recordings.response("openai", "chat_stream_parallel_tool_calls", 1)
    fake.on("POST", "/v1/chat/completions", reply_stream(recordings.sse_frames(body)))
    with sdk(gateway).messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "Secrets?"}]
    ) as stream:
        final = stream.get_final_message()
    ctx = gateway.recorder.wait_for(1)[-1]
    assert ctx.usage is not None and ctx.usage.completion_tokens == final.usage.output_tokens > 0


@pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-0' is deprecated:DeprecationWarning")
def test_an_anthropic_backend_answers_through_the_route(gateway, fake_provider, messages_routes):
    """Today through the Anthropic adapter (the byte-for-byte passthrough needs the proxy change
    described in messages_view); the client gets Anthropic's answer either way."""
    fake = fake_provider("anthropic")
    fake.on("POST", "/v1/messages", fake_anthropic.recorded("messages_parallel_tool_use", 1))
    gateway.route((route_for(fake, kind="anthropic", key="sk-ant-test-key-0001"), ["claude-sonnet-4-0"]))
    original = json.loads(recordings.response("anthropic", "messages_parallel_tool_use", 1))

    message = sdk(gateway).messages.create(
        model="claude-sonnet-4-0",
        max_tokens=16000,
        system=[{"type": "text", "text": "Use parallel tool calling."}],
        tools=[TOOL],
        messages=[{"role": "user", "content": "Secrets for mellon and radiance?"}],
    )

    assert message.id == original["id"] and message.stop_reason == "tool_use"
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {key: value for key, value in block.items() if value is not None} for block in original["content"]
    ]


def test_dropped_fields_are_logged_once_per_backend(openai_backend, caplog):
    gateway, fake = openai_backend
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    client = sdk(gateway)
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    with caplog.at_level("WARNING", logger="gateway.dialects.anthropic_messages"):
        for _ in range(3):
            client.messages.create(
                model=MODEL, max_tokens=16, system=system, messages=[{"role": "user", "content": "hi"}]
            )
    lines = [r.getMessage() for r in caplog.records if "cannot take these Anthropic fields" in r.getMessage()]
    assert lines == [
        "messages ingress: backend openai cannot take these Anthropic fields, dropped: system.cache_control"
    ]


def test_an_internal_failure_is_an_anthropic_500(openai_backend, monkeypatch, caplog):
    gateway, fake = openai_backend
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    # A fault injected below the handler: the boundary is what is tested, not the translation.
    monkeypatch.setattr("gateway.messages_view.from_openai_completion", broken)
    with pytest.raises(anthropic.InternalServerError) as failed:
        sdk(gateway).messages.create(model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert failed.value.body["type"] == "error" and failed.value.body["error"]["type"] == "api_error"
    assert "request id" in failed.value.body["error"]["message"]


def test_a_request_cut_short_by_a_shutdown_is_answered_in_anthropics_shape(openai_backend):
    gateway, fake = openai_backend
    fake.on("POST", "/v1/chat/completions", hang())
    answers = []

    def call():
        with gateway.client() as client:
            answers.append(
                client.post(
                    "/v1/messages",
                    json={"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]},
                    headers={"x-api-key": "client-key", "anthropic-version": "2023-06-01"},
                )
            )

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while gateway.gateway.inflight == 0:
        assert time.monotonic() < deadline, "the request never reached the gateway"
        time.sleep(0.01)
    task = next(iter(gateway.gateway._inflight.values()))
    task.get_loop().call_soon_threadsafe(gateway.gateway.abort_streams)
    caller.join(10)

    (answer,) = answers
    assert answer.status_code == 503
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "overloaded_error"


def count_with(gateway, fake_provider, behaviour, *, max_response_bytes=None):
    fake = fake_provider("anthropic")
    fake.on("POST", "/v1/messages/count_tokens", behaviour)
    if max_response_bytes is not None:
        gateway.configure(max_response_bytes=max_response_bytes)
    gateway.route((route_for(fake, kind="anthropic", key="sk-ant-test-key-0001"), ["claude-sonnet-4-0"]))
    with gateway.client() as client:
        return client.post(
            "/v1/messages/count_tokens",
            json={"model": "claude-sonnet-4-0", "messages": [{"role": "user", "content": "Hello"}]},
            headers={"x-api-key": "client-key", "anthropic-version": "2023-06-01"},
        )


def test_count_tokens_never_relays_the_backends_key(gateway, fake_provider):
    message = "bad key sk-ant-test-key-0001"
    echoed = reply_json({"type": "error", "error": {"type": "authentication_error", "message": message}}, status=401)

    answer = count_with(gateway, fake_provider, echoed)

    assert answer.status_code == 401
    assert "sk-ant-test-key-0001" not in answer.text and "[redacted]" in answer.text


def test_count_tokens_refuses_an_answer_larger_than_the_limit(gateway, fake_provider):
    huge = reply_bytes(b'{"input_tokens": 1}' + b" " * 5000)

    answer = count_with(gateway, fake_provider, huge, max_response_bytes=1000)

    assert answer.status_code == 502
    assert answer.json()["type"] == "error" and answer.json()["error"]["type"] == "api_error"
