"""Chat completions through the real gateway server, with no database (hot path is ORM-free)."""

import json
import threading
import time

import httpx
import openai
import pytest

from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import hang, reply_bytes, reply_json, reply_stream

USER = [{"role": "user", "content": "What is 4200 + 42?"}]


def sdk(gateway, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="client-key", max_retries=0, **kwargs)


@pytest.fixture
def openai_fake(fake_provider):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    return fake


def test_non_streaming_answer_reaches_the_sdk_unchanged(gateway, openai_fake):
    gateway.route((route_for(openai_fake), ["gpt-4o"]))

    completion = sdk(gateway).chat.completions.create(model="gpt-4o", messages=USER)

    recorded = json.loads(recordings.response("openai", "chat_text"))
    assert completion.id == recorded["id"]
    assert completion.choices[0].message.content == recorded["choices"][0]["message"]["content"]
    assert completion.usage.total_tokens == recorded["usage"]["total_tokens"]


def test_body_is_forwarded_byte_for_byte_with_the_backend_key(gateway, openai_fake):
    gateway.route((route_for(openai_fake, key="sk-backend-secret-9999"), ["gpt-4o"]))
    body = (
        b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function",'
        b'"function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto",'
        b'"response_format":{"type":"json_object"},"x_unknown_field":{"kept":true}}'
    )

    with gateway.client() as client:
        response = client.post(
            "/v1/chat/completions",
            content=body,
            headers={
                "content-type": "application/json",
                "authorization": "Bearer client-key",
                "connection": "keep-alive",
                "x-custom": "1",
            },
        )

    assert response.status_code == 200
    received = openai_fake.requests_to("/v1/chat/completions")[0]
    assert received.body == body
    assert received.headers["Authorization"] == "Bearer sk-backend-secret-9999"
    assert "client-key" not in json.dumps(received.headers)
    assert "x-custom" not in {k.lower() for k in received.headers}


def test_every_response_names_the_backend(gateway, openai_fake):
    gateway.route((route_for(openai_fake, name="primary"), ["gpt-4o"]))

    with gateway.client() as client:
        ok = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})
        bad = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER, "stream": "yes"})

    assert ok.headers["x-eldric-backend"] == "primary"
    assert bad.status_code == 400


def test_routing_prefers_the_best_priority_backend_that_lists_the_model(gateway, fake_provider):
    low, high, other = fake_provider("low"), fake_provider("high"), fake_provider("other")
    for fake in (low, high, other):
        fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    gateway.route(
        (route_for(low, priority=5), ["gpt-4o", "shared"]),
        (route_for(high, priority=1), ["shared"]),
        (route_for(other, priority=9), ["grok-3"]),
        default="other",
    )

    with gateway.client() as client:
        for model, expected in (("shared", "high"), ("gpt-4o", "low"), ("grok-3", "other")):
            response = client.post("/v1/chat/completions", json={"model": model, "messages": USER})
            assert response.headers["x-eldric-backend"] == expected, model


def test_unknown_model_goes_to_the_default_backend_with_its_name_unchanged(gateway, fake_provider):
    listed, default = fake_provider("listed"), fake_provider("fallback")
    for fake in (listed, default):
        fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    gateway.route((route_for(listed), ["gpt-4o"]), (route_for(default, priority=2), []), default="fallback")

    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "my-custom-model", "messages": USER})

    assert response.headers["x-eldric-backend"] == "fallback"
    assert default.requests_to("/v1/chat/completions")[0].json()["model"] == "my-custom-model"
    assert listed.requests_to("/v1/chat/completions") == []


def test_streaming_relays_the_recorded_events_and_ends_with_done(gateway, fake_provider):
    fake = fake_provider("openai")
    recorded = recordings.response("openai", "chat_stream_text")
    fake.on("POST", "/v1/chat/completions", reply_stream(recordings.sse_frames(recorded)))
    gateway.route((route_for(fake), ["gpt-4o"]))

    # The recording asked for usage; so does this client, so nothing is added or removed.
    request = {"model": "gpt-4o", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json=request)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == recorded.replace(b"\r\n", b"\n")
    assert response.content.rstrip().endswith(b"data: [DONE]")


def test_first_chunk_reaches_the_client_before_upstream_sends_its_last(gateway, fake_provider):
    fake = fake_provider("openai")
    frames = recordings.sse_frames(recordings.response("openai", "chat_stream_text"))
    release_last = threading.Event()
    fake.on("POST", "/v1/chat/completions", reply_stream(frames, hold_before_last=release_last))
    gateway.route((route_for(fake), ["gpt-4o"]))

    stream = sdk(gateway).chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    first = next(iter(stream))
    # The upstream is still holding its last frame back: the first chunk was not buffered.
    assert not release_last.is_set()
    assert first.choices[0].delta.role == "assistant"
    release_last.set()
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "4242" in text


def test_client_disconnect_closes_the_upstream_stream_at_once(gateway, fake_provider):
    fake = fake_provider("openai")
    frames = recordings.sse_frames(recordings.response("openai", "chat_stream_text"))
    never = threading.Event()
    fake.on("POST", "/v1/chat/completions", reply_stream(frames, hold_before_last=never, fake=fake))
    gateway.route((route_for(fake), ["gpt-4o"]))

    with (
        httpx.Client(base_url=gateway.url) as client,
        client.stream("POST", "/v1/chat/completions", json={"model": "gpt-4o", "messages": USER, "stream": True}) as r,
    ):
        next(r.iter_raw())
    # The client has gone; the fake sees its connection closed while holding the last frame.
    deadline = time.monotonic() + 5
    while fake.closed_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.closed_streams == 1


def test_streamed_tool_call_arguments_arrive_in_fragments_and_reassemble(gateway, fake_provider):
    fake = fake_provider("openai")
    recorded = recordings.response("openai", "chat_stream_parallel_tool_calls", 1)
    fake.on("POST", "/v1/chat/completions", reply_stream(recordings.sse_frames(recorded)))
    gateway.route((route_for(fake), ["gpt-4o"]))

    stream = sdk(gateway).chat.completions.create(
        model="gpt-4o",
        messages=USER,
        stream=True,
        tools=[{"type": "function", "function": {"name": "secret_retrieval_tool", "parameters": {"type": "object"}}}],
    )
    calls: dict[int, dict] = {}
    fragments = 0
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        for delta in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = delta.id or call["id"]
            call["name"] = (delta.function.name if delta.function else None) or call["name"]
            if delta.function and delta.function.arguments:
                call["arguments"] += delta.function.arguments
                fragments += 1
        finish = chunk.choices[0].finish_reason or finish

    assert finish == "tool_calls"
    assert len(calls) == 2
    assert fragments > len(calls)  # really fragmented, not one piece per call
    assert {json.loads(c["arguments"])["password"] for c in calls.values()} == {"mellon", "radiance"}
    assert all(c["id"].startswith("call_") and c["name"] == "secret_retrieval_tool" for c in calls.values())


def test_models_list_merges_backends_and_tags_each_with_its_owner(gateway, fake_provider):
    first, second = fake_provider("xai"), fake_provider("openai")
    gateway.route(
        (route_for(first, priority=1), ["grok-3", "shared-model"]),
        (route_for(second, priority=2), ["gpt-4o", "shared-model"]),
    )

    models = sdk(gateway).models.list()

    owners = {m.id: m.owned_by for m in models.data}
    assert owners == {"grok-3": "xai", "gpt-4o": "openai", "shared-model": "xai"}
    assert sdk(gateway).models.retrieve("gpt-4o").owned_by == "openai"


def test_health_reports_the_seed_shape(gateway, fake_provider):
    up, down = fake_provider("up"), fake_provider("down")
    gateway.route((route_for(up), ["a"]), (route_for(down, health="unhealthy"), ["b"]), worker_id="cld-1234abcd")

    with gateway.client() as client:
        body = client.get("/health").json()

    assert body["status"] == "degraded"
    assert body["worker_type"] == "cloud"
    assert body["worker_id"] == "cld-1234abcd"
    assert body["backends"] == {"total": 2, "healthy": 1, "unhealthy": 1}
    assert body["models_available"] == 1
    assert isinstance(body["uptime_seconds"], int)


def test_upstream_error_keeps_its_status_and_message(gateway, fake_provider):
    fake = fake_provider("openai")
    fake.on(
        "POST",
        "/v1/chat/completions",
        reply_bytes(recordings.response("openai", "error_404_model_not_found", 1), status=404),
    )
    gateway.route((route_for(fake), ["gpt-4o"]))

    with pytest.raises(openai.NotFoundError) as caught:
        sdk(gateway).chat.completions.create(model="gpt-4o", messages=USER)

    assert caught.value.status_code == 404
    assert "does not exist" in caught.value.message
    assert caught.value.body["code"] == "model_not_found"
    assert caught.value.response.headers["x-eldric-backend"] == "openai"


def test_non_openai_error_bodies_are_wrapped_in_the_openai_shape(gateway, fake_provider):
    fake = fake_provider("mistral")
    fake.on("POST", "/v1/chat/completions", reply_json({"detail": "Invalid API Key"}, status=401))
    gateway.route((route_for(fake), ["mistral-large"]))

    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "mistral-large", "messages": USER})

    assert response.status_code == 401
    assert response.json() == {
        "error": {"message": "Invalid API Key", "type": "authentication_error", "param": None, "code": None}
    }


def test_connect_failure_is_502(gateway, fake_provider):
    fake = fake_provider("gone")
    gateway.route((route_for(fake), ["gpt-4o"]))
    fake.stop()

    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"


def test_upstream_timeout_is_504_within_the_configured_timeout(gateway, fake_provider):
    gateway.configure(read_timeout=0.5)
    fake = fake_provider("slow")
    fake.on("POST", "/v1/chat/completions", hang())
    gateway.route((route_for(fake), ["gpt-4o"]))

    started = time.monotonic()
    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < 5


def test_no_healthy_backend_is_503_naming_each_backend_and_its_state(gateway, fake_provider):
    a, b = fake_provider("a"), fake_provider("b")
    gateway.route((route_for(a, health="auth_failed"), ["gpt-4o"]), (route_for(b, health="auth_failed"), ["gpt-4o"]))

    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})

    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert "a: auth_failed" in message and "b: auth_failed" in message
    assert a.received == [] and b.received == []


def test_upstream_headers_are_the_backends_own_and_stay_right_across_backends(gateway, fake_provider):
    """Upstream headers are merged once per header set and kept: each backend still gets its own
    key and headers, with the gateway's User-Agent unless the backend sets one."""
    plain, branded = fake_provider("plain"), fake_provider("branded")
    for fake in (plain, branded):
        fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    gateway.route(
        (route_for(plain, key="sk-plain-key-0001"), ["gpt-4o"]),
        (
            route_for(branded, key="sk-branded-key-0002", headers=(("user-agent", "acme/2"), ("x-team", "a"))),
            ["gpt-4o-mini"],
        ),
    )
    client = sdk(gateway)
    for _ in range(3):
        client.chat.completions.create(model="gpt-4o", messages=USER)
        client.chat.completions.create(model="gpt-4o-mini", messages=USER)

    for received in plain.requests_to("/v1/chat/completions"):
        headers = {k.lower(): v for k, v in received.headers.items()}
        assert headers["authorization"] == "Bearer sk-plain-key-0001"
        assert headers["user-agent"].startswith("eldric-cloudd/")
        assert "x-team" not in headers
        assert headers["content-length"] == str(len(received.body))
    for received in branded.requests_to("/v1/chat/completions"):
        headers = {k.lower(): v for k, v in received.headers.items()}
        assert headers["authorization"] == "Bearer sk-branded-key-0002"
        assert headers["user-agent"] == "acme/2"
        assert headers["x-team"] == "a"
    assert len(branded.requests_to("/v1/chat/completions")) == 3
