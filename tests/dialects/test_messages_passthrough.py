"""``/v1/messages`` to a ``type: anthropic`` backend: the client's bytes go upstream as they came
and the answer comes back untouched (no double translation), with usage still accounted, and a
failover to a backend of another kind switching to translation for that attempt."""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from tests.conftest import route_for
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import recordings
from tests.fakes.server import reply_bytes, reply_stream

MODEL = "claude-sonnet-4-0"
pytestmark = pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-0' is deprecated:DeprecationWarning")


@pytest.fixture
def anthropic_backend(gateway, fake_provider):
    fake = fake_provider("anthropic")
    gateway.route((route_for(fake, kind="anthropic", key="sk-ant-test-key-0001"), [MODEL]))
    return gateway, fake


def post(gateway, body: bytes) -> httpx.Response:
    with gateway.client() as client:
        return client.post(
            "/v1/messages",
            content=body,
            headers={"content-type": "application/json", "x-api-key": "client-key", "anthropic-version": "2023-06-01"},
        )


# What the OpenAI form cannot hold: prompt caching marks and a field the adapter does not know.
BODY = json.dumps(
    {
        "model": MODEL,
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]}
        ],
        "service_tier": "auto",
    },
    separators=(",", ":"),
).encode()


def test_the_request_and_the_answer_cross_unchanged(anthropic_backend):
    gateway, fake = anthropic_backend
    fake.on("POST", "/v1/messages", fake_anthropic.recorded("messages_max_tokens"))

    response = post(gateway, BODY)

    assert response.status_code == 200
    received = fake.requests_to("/v1/messages")[0]
    assert received.body == BODY
    assert received.headers["x-api-key"] == "sk-ant-test-key-0001"
    assert response.content == recordings.response("anthropic", "messages_max_tokens")
    recorded_usage = json.loads(response.content)["usage"]
    ctx = gateway.recorder.wait_for(1)[-1]
    assert ctx.backend == fake.name and ctx.status == 200
    assert ctx.usage.completion_tokens == recorded_usage["output_tokens"] > 0


def test_a_stream_is_relayed_event_for_event_and_its_usage_counted(anthropic_backend):
    gateway, fake = anthropic_backend
    fake.on("POST", "/v1/messages", fake_anthropic.recorded("messages_stream_text"))
    recorded = recordings.response("anthropic", "messages_stream_text")

    with anthropic.Anthropic(base_url=gateway.url, api_key="client-key", max_retries=0).messages.stream(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        final = stream.get_final_message()
    with gateway.client() as client:
        raw = client.post(
            "/v1/messages",
            json={"model": MODEL, "max_tokens": 256, "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
            headers={"x-api-key": "client-key", "anthropic-version": "2023-06-01"},
        )

    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    assert raw.content == recorded
    for ctx in gateway.recorder.wait_for(2):
        assert ctx.usage.completion_tokens == final.usage.output_tokens


def test_a_stream_cut_before_message_stop_ends_with_an_error_event(anthropic_backend):
    gateway, fake = anthropic_backend
    frames = recordings.sse_frames(recordings.response("anthropic", "messages_stream_text"))
    fake.on("POST", "/v1/messages", reply_stream(frames[:3]))

    with gateway.client() as client:
        raw = client.post(
            "/v1/messages",
            json={"model": MODEL, "max_tokens": 256, "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
            headers={"x-api-key": "client-key", "anthropic-version": "2023-06-01"},
        )

    assert raw.content.startswith(b"".join(frames[:3]))
    last = raw.content.strip().split(b"\n\n")[-1]
    assert last.startswith(b"event: error\n") and b'"type":"api_error"' in last


def test_a_failover_to_an_openai_backend_translates_that_attempt(gateway, fake_provider):
    down, openai = fake_provider("anthropic-down"), fake_provider("openai")
    down.on("POST", "/v1/messages", fake_anthropic.error(529, "overloaded_error", "Overloaded"))
    openai.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    gateway.route(
        (route_for(down, kind="anthropic", key="sk-ant-test-key-0001", priority=1), [MODEL]),
        (route_for(openai, priority=2), [MODEL]),
    )

    message = anthropic.Anthropic(base_url=gateway.url, api_key="client-key", max_retries=0).messages.create(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "What is 4200 + 42?"}]
    )

    assert down.requests_to("/v1/messages") and openai.requests_to("/v1/chat/completions")
    recorded = json.loads(recordings.response("openai", "chat_text"))
    assert message.content[0].text == recorded["choices"][0]["message"]["content"]
    assert message.type == "message"


def test_a_200_that_is_not_json_is_not_passed_off_as_an_answer(anthropic_backend):
    gateway, fake = anthropic_backend
    fake.on("POST", "/v1/messages", reply_bytes(b"<html>maintenance</html>", content_type="text/html"))

    response = post(gateway, BODY)

    assert response.status_code == 502
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "api_error"


def test_an_error_event_from_anthropic_is_relayed_and_nothing_added(anthropic_backend):
    gateway, fake = anthropic_backend
    frames = recordings.sse_frames(recordings.response("anthropic", "messages_stream_text"))[:3]
    overloaded = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    fake.on("POST", "/v1/messages", reply_stream([*frames, overloaded]))

    with gateway.client() as client:
        raw = client.post(
            "/v1/messages",
            json={"model": MODEL, "max_tokens": 256, "stream": True, "messages": [{"role": "user", "content": "Hi"}]},
            headers={"x-api-key": "client-key", "anthropic-version": "2023-06-01"},
        )

    assert raw.content == b"".join([*frames, overloaded])
