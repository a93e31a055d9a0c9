"""The request pipeline: request ids, the backend header on every answer, the error boundary,
observers that see every request however it ends, and token usage."""

import asyncio
import json
import threading
import time

import httpx
import openai
import pytest
from aiohttp import web

from gateway.app import GatewayApplication
from gateway.asgi_io import Responder
from gateway.config import GatewayConfig
from gateway.pipeline import Gateway
from gateway.snapshot import SnapshotSource
from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import hang, hold_until_closed, reply_bytes, reply_json, reply_stream

USER = [{"role": "user", "content": "What is 4200 + 42?"}]
ANSWER = recordings.response("openai", "chat_text")


def chat(gateway, **extra):
    with gateway.client() as client:
        return client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER, **extra})


@pytest.fixture
def routed(gateway, fake_provider):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(fake), ["gpt-4o"]))
    return gateway, fake


# --- request ids and the backend header ----------------------------------------------------


def test_every_answer_carries_a_generated_request_id(routed):
    gateway, _ = routed
    first, second = chat(gateway), chat(gateway)

    assert first.headers["x-request-id"].startswith("req_")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    with gateway.client() as client:
        assert client.get("/v1/models").headers["x-request-id"].startswith("req_")
        assert client.post("/v1/nowhere").headers["x-request-id"].startswith("req_")


def test_the_clients_own_request_id_is_kept_and_a_hostile_one_replaced(routed):
    gateway, _ = routed
    with gateway.client() as client:
        mine = client.post(
            "/v1/chat/completions", json={"model": "gpt-4o", "messages": USER}, headers={"x-request-id": "trace-42"}
        )
        hostile = client.post(
            "/v1/chat/completions", json={"model": "gpt-4o", "messages": USER}, headers={"x-request-id": "a b\x7f" * 80}
        )

    assert mine.headers["x-request-id"] == "trace-42"
    assert hostile.headers["x-request-id"].startswith("req_")


def test_the_upstreams_request_id_is_passed_on_under_its_own_name(gateway, fake_provider):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", reply_bytes(ANSWER, headers={"x-request-id": "upstream-1"}))
    gateway.route((route_for(fake), ["gpt-4o"]))

    response = chat(gateway)

    assert response.headers["x-upstream-request-id"] == "upstream-1"
    assert response.headers["x-request-id"] != "upstream-1"


@pytest.mark.parametrize("status", [429, 500, 503])
def test_error_answers_from_a_backend_name_it(gateway, fake_provider, status):
    fake = fake_provider("only")
    fake.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "no"}}, status=status))
    gateway.route((route_for(fake), ["gpt-4o"]))

    response = chat(gateway)

    assert response.status_code == status
    assert response.headers["x-eldric-backend"] == "only"
    assert response.json()["error"]["message"] == "no"


def test_the_openai_sdk_reads_the_gateways_request_id(routed):
    gateway, _ = routed
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0)

    completion = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)

    assert completion.request_id.startswith("req_")


# --- the error boundary ---------------------------------------------------------------------


async def _run(app, path="/v1/chat/completions"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    await app(scope, receive, send)
    return sent


def _app_with(handler):
    gateway = Gateway(config=GatewayConfig(), snapshots=SnapshotSource(database=False))
    app = GatewayApplication(gateway, fallback=None, start_on_lifespan=False)

    async def call(scope, receive, send):
        await app.serve(handler, "openai.chat", scope, receive, send)

    return call, gateway


def test_a_bug_before_the_answer_starts_is_an_openai_shaped_500_with_the_request_id(caplog):
    async def broken(gw, ctx, scope, receive, out):
        raise KeyError("a bug")

    app, _ = _app_with(broken)
    sent = asyncio.run(_run(app))

    start, body = sent
    assert start["status"] == 500
    headers = dict(start["headers"])
    error = json.loads(body["body"])["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "internal_error"
    assert headers[b"x-request-id"].decode() in error["message"]
    assert "KeyError" in caplog.text  # the traceback went to the log, not to the client
    assert "KeyError" not in error["message"]


def test_a_bug_after_a_stream_started_ends_it_with_an_error_event_and_done():
    async def broken(gw, ctx, scope, receive, out: Responder):
        out.streaming = True
        await out.start(200, [(b"content-type", b"text/event-stream")])
        await out.body(b"data: {}\n\n", more=True)
        raise RuntimeError("a bug mid-stream")

    app, _ = _app_with(broken)
    sent = asyncio.run(_run(app))

    tail = sent[-1]
    assert tail["more_body"] is False
    events = tail["body"].decode().strip().split("\n\n")
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0].removeprefix("data: "))["error"]["code"] == "internal_error"


def test_observers_hear_of_a_request_that_failed_with_a_bug():
    async def broken(gw, ctx, scope, receive, out):
        raise ValueError("a bug")

    seen = []

    class Observer:
        def request_finished(self, ctx):
            seen.append(ctx)

    app, gateway = _app_with(broken)
    gateway.observers.append(Observer())

    async def run_and_settle():
        await _run(app)
        await asyncio.sleep(0)

    asyncio.run(run_and_settle())

    assert len(seen) == 1 and seen[0].status == 500 and seen[0].done is not None
    assert gateway.inflight == 0


def test_a_failing_observer_does_not_touch_the_answer_or_the_other_observers(routed, caplog):
    gateway, _ = routed

    class Broken:
        def request_finished(self, ctx):
            raise RuntimeError("observer bug")

    gateway.gateway.observers.insert(0, Broken())

    assert chat(gateway).status_code == 200
    assert gateway.recorder.wait_for(1)[0].status == 200
    assert "observer bug" in caplog.text


# --- what observers receive -------------------------------------------------------------------


def test_a_completed_request_reports_backend_model_timings_and_usage(routed):
    gateway, _ = routed

    chat(gateway)

    (ctx,) = gateway.recorder.wait_for(1)
    expected = json.loads(ANSWER)["usage"]
    assert (ctx.backend, ctx.model, ctx.status, ctx.model_known) == ("openai", "gpt-4o", 200, True)
    assert ctx.usage.prompt_tokens == expected["prompt_tokens"]
    assert ctx.usage.completion_tokens == expected["completion_tokens"]
    assert [a.outcome for a in ctx.attempts] == ["ok"]
    assert ctx.received <= ctx.first_upstream_byte <= ctx.first_client_byte <= ctx.done
    assert ctx.principal.kind == "anonymous"


def test_failovers_are_reported_with_their_reasons(gateway, fake_provider):
    down, up = fake_provider("down"), fake_provider("up")
    down.stop()
    up.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(down, priority=1), ["gpt-4o"]), (route_for(up, priority=2), ["gpt-4o"]))

    assert chat(gateway).status_code == 200

    (ctx,) = gateway.recorder.wait_for(1)
    assert [(a.backend, a.outcome) for a in ctx.attempts] == [("down", "connect_error"), ("up", "ok")]
    assert "down" in ctx.failovers[0].reason
    assert ctx.backend == "up"


def test_client_errors_and_refusals_are_reported_too(routed):
    gateway, fake = routed
    fake.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "bad", "code": "x"}}, status=400))

    chat(gateway)
    with gateway.client() as client:
        client.post("/v1/chat/completions", content=b"{")

    upstream_refusal, bad_json = gateway.recorder.wait_for(2)
    assert (upstream_refusal.status, upstream_refusal.backend, upstream_refusal.attempts[0].outcome) == (
        400,
        "openai",
        "client_error",
    )
    assert (bad_json.status, bad_json.backend, bad_json.attempts) == (400, "", [])
    assert bad_json.error_type == "invalid_request_error"


def test_a_model_no_backend_lists_is_not_known(gateway, fake_provider):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(fake), []), default="openai")

    with gateway.client() as client:
        client.post("/v1/chat/completions", json={"model": "client-made-this-up", "messages": USER})

    (ctx,) = gateway.recorder.wait_for(1)
    assert ctx.backend == "openai" and ctx.model == "client-made-this-up" and not ctx.model_known


def test_a_client_that_leaves_a_non_stream_request_cancels_the_upstream_call(gateway, fake_provider):
    fake = fake_provider("slow")
    cancelled = threading.Event()

    fake.on("POST", "/v1/chat/completions", hold_until_closed(cancelled))
    gateway.route((route_for(fake), ["gpt-4o"]))

    with pytest.raises(httpx.ReadTimeout), gateway.client(timeout=0.5) as client:
        client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})

    # The client gave up after 0.5 s; the upstream connection is gone within a second of that.
    assert cancelled.wait(1.5)
    (ctx,) = gateway.recorder.wait_for(1)
    assert ctx.client_disconnected and ctx.status == 0


# --- stream usage ---------------------------------------------------------------------------


def _stream_fake(gateway, fake_provider, name="openai"):
    fake = fake_provider(name)
    frames = recordings.sse_frames(recordings.response("openai", "chat_stream_text"))
    fake.on("POST", "/v1/chat/completions", reply_stream(frames))
    gateway.route((route_for(fake), ["gpt-4o"]))
    return fake


def test_stream_usage_is_asked_for_upstream_and_hidden_from_a_client_that_did_not_ask(gateway, fake_provider):
    fake = _stream_fake(gateway, fake_provider)

    response = chat(gateway, stream=True)

    sent = fake.received[0].json()
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == USER
    events = [e for e in response.text.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)  # the usage-only chunk is gone
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert "4242" in text.replace(",", "")
    (ctx,) = gateway.recorder.wait_for(1)
    assert ctx.usage is not None and ctx.usage.completion_tokens > 0


def test_the_openai_sdk_stream_without_usage_sees_no_usage_chunk(gateway, fake_provider):
    _stream_fake(gateway, fake_provider)
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0)

    chunks = list(client.chat.completions.create(model="gpt-4o", messages=USER, stream=True))

    assert chunks and all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert gateway.recorder.wait_for(1)[0].usage.total_tokens > 0


def test_a_client_that_asked_for_usage_gets_it_and_it_is_counted(gateway, fake_provider):
    fake = _stream_fake(gateway, fake_provider)
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0)

    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )

    assert chunks[-1].usage is not None
    assert fake.received[0].json()["stream_options"] == {"include_usage": True}
    assert gateway.recorder.wait_for(1)[0].usage.total_tokens == chunks[-1].usage.total_tokens


def test_mistral_is_not_asked_for_stream_usage(gateway, fake_provider):
    fake = _stream_fake(gateway, fake_provider, name="mistral")

    chat(gateway, stream=True)

    assert "stream_options" not in fake.received[0].json()


# --- streams that end badly -----------------------------------------------------------------


def test_a_translator_that_cannot_read_the_stream_ends_it_with_an_error_event_and_done(gateway, fake_provider):
    fake = fake_provider("claude")
    start = recordings.sse_frames(recordings.response("anthropic", "messages_stream_max_tokens"))[:2]
    garbage = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": "x", "delta": 5}\n\n'
    fake.on("POST", "/messages", reply_stream([*start, garbage, b"data: {not json\n\n"]))
    gateway.route((route_for(fake, kind="anthropic", path=""), ["claude"]))

    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "claude", "messages": USER, "stream": True})

    events = [e for e in response.text.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2].removeprefix("data: "))["error"]["type"] == "api_error"


def test_a_stream_that_goes_quiet_is_ended_after_the_idle_deadline(gateway, fake_provider):
    gateway.configure(stream_idle_timeout=0.5)
    fake = fake_provider("openai")
    frames = recordings.sse_frames(recordings.response("openai", "chat_stream_text"))
    release = threading.Event()
    fake.on("POST", "/v1/chat/completions", reply_stream(frames, hold_before_last=release))
    gateway.route((route_for(fake), ["gpt-4o"]))

    try:
        started = time.monotonic()
        response = chat(gateway, stream=True)
    finally:
        release.set()

    assert time.monotonic() - started < 5
    events = [e for e in response.text.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2].removeprefix("data: "))["error"]["code"] == "upstream_timeout"


def test_a_non_stream_request_has_a_total_deadline_even_against_a_dripping_upstream(gateway, fake_provider):
    gateway.configure(request_timeout=1.0, read_timeout=30)
    fake = fake_provider("drip")

    async def drip(request):
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for _ in range(60):
            await response.write(b" ")
            await asyncio.sleep(0.2)
        return response

    fake.on("POST", "/v1/chat/completions", drip)
    gateway.route((route_for(fake), ["gpt-4o"]))

    started = time.monotonic()
    response = chat(gateway)

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "request_timeout"
    assert time.monotonic() - started < 4


# --- the half-open trial, and backends that come back ---------------------------------------


def test_a_cancelled_half_open_trial_does_not_keep_the_backend_out(gateway, fake_provider):
    gateway.configure(breaker_failures=1, breaker_cooldown=0.2)
    fake = fake_provider("only")
    fake.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "down"}}, status=500))
    gateway.route((route_for(fake), ["gpt-4o"]))
    assert chat(gateway).status_code == 500  # opens the circuit
    time.sleep(0.25)

    # The half-open trial hangs and its client gives up.
    fake.on("POST", "/v1/chat/completions", hang(30))
    with pytest.raises(httpx.ReadTimeout), gateway.client(timeout=0.5) as client:
        client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})
    gateway.recorder.wait_for(2)

    # The backend is fine again; the next request is its trial, not a 503 circuit_half_open.
    fake.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    assert chat(gateway).status_code == 200


def test_a_backend_a_probe_called_down_is_routable_as_soon_as_it_answers(gateway, fake_provider):
    fake = fake_provider("returning")
    fake.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(fake, health="unhealthy"), ["gpt-4o"]))

    first, second = chat(gateway), chat(gateway)

    assert first.status_code == 200 and second.status_code == 200
    assert first.headers["x-eldric-backend"] == "returning"
    with gateway.client() as client:
        assert client.get("/health").json()["status"] == "healthy"


def test_a_trial_against_a_backend_still_down_is_one_attempt_then_503(gateway, fake_provider):
    fake = fake_provider("gone")
    fake.stop()
    gateway.route((route_for(fake, health="unhealthy"), ["gpt-4o"]))

    response = chat(gateway)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_unreachable"
    assert "127.0.0.1" not in response.text  # the backend's name, never its address


def test_a_model_whose_backends_are_all_disabled_is_not_sent_to_the_default(gateway, fake_provider):
    off, fallback = fake_provider("off"), fake_provider("fallback")
    fallback.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(off, enabled=False), ["gpt-4o"]), (route_for(fallback), []), default="fallback")

    response = chat(gateway)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "backend_disabled"
    assert fallback.received == []


# --- small ones -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [("POST", "/health", "GET, HEAD"), ("DELETE", "/v1/models", "GET, HEAD"), ("GET", "/v1/chat/completions", "POST")],
)
def test_every_405_names_the_allowed_methods(gateway, method, path, allow):
    with gateway.client() as client:
        response = client.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_readiness_answers_503_until_the_gateway_started():
    async def ready(gw, ctx, scope, receive, out):
        from gateway.views import readiness

        await readiness(gw, ctx, {**scope, "method": "GET"}, receive, out)

    app, _ = _app_with(ready)
    start = asyncio.run(_run(app, "/health/ready"))[0]

    assert start["status"] == 503


def test_readiness_answers_503_while_draining_and_answers_close_the_connection(gateway):
    with gateway.client() as client:
        assert client.get("/health/ready").json() == {"status": "ready"}
        gateway.gateway.begin_drain()
        response = client.get("/health/ready")
    assert response.status_code == 503 and response.json() == {"status": "draining"}
    assert response.headers["connection"] == "close"
