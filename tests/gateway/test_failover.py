"""Failover before the first byte, circuit breaking, and mid-stream failures."""

import json
import time

import openai
import pytest

from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import hang, reply_bytes, reply_json, reply_stream

USER = [{"role": "user", "content": "What is 4200 + 42?"}]
ANSWER = recordings.response("openai", "chat_text")


def ask(gateway, model="gpt-4o", **extra):
    with gateway.client() as client:
        return client.post("/v1/chat/completions", json={"model": model, "messages": USER, **extra})


@pytest.fixture
def pair(gateway, fake_provider):
    """Two backends serving the same model: primary (priority 1) and secondary (priority 2)."""
    primary, secondary = fake_provider("primary"), fake_provider("secondary")
    secondary.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(primary, priority=1), ["gpt-4o"]), (route_for(secondary, priority=2), ["gpt-4o"]))
    return gateway, primary, secondary


def test_refused_connection_fails_over_to_the_next_backend(pair):
    gateway, primary, _ = pair
    primary.stop()

    response = ask(gateway)

    assert response.status_code == 200
    assert response.headers["x-eldric-backend"] == "secondary"


def test_timeout_fails_over_within_the_configured_timeout(pair):
    gateway, primary, _ = pair
    gateway.configure(read_timeout=0.5)
    primary.on("POST", "/v1/chat/completions", hang())

    started = time.monotonic()
    response = ask(gateway)

    assert response.headers["x-eldric-backend"] == "secondary"
    assert time.monotonic() - started < 5


def test_a_stream_whose_backend_never_answers_fails_over_within_the_read_timeout(pair):
    # A stream's upstream request has no per-read timer: the proxy bounds the wait for headers.
    gateway, primary, _ = pair
    gateway.configure(read_timeout=0.5)
    primary.on("POST", "/v1/chat/completions", hang())

    started = time.monotonic()
    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER, "stream": True})

    assert response.status_code == 200
    assert response.headers["x-eldric-backend"] == "secondary"
    assert time.monotonic() - started < 5


def test_a_stream_whose_only_backend_never_answers_is_a_504_not_a_hang(gateway, fake_provider):
    gateway.configure(read_timeout=0.5)
    silent = fake_provider("silent")
    silent.on("POST", "/v1/chat/completions", hang())
    gateway.route((route_for(silent), ["gpt-4o"]))

    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER, "stream": True})

    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_server_error_fails_over(pair):
    gateway, primary, _ = pair
    primary.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "boom"}}, status=500))

    response = ask(gateway)

    assert response.status_code == 200
    assert response.headers["x-eldric-backend"] == "secondary"
    assert len(primary.requests_to("/v1/chat/completions")) == 1


def test_rate_limited_backend_is_skipped_until_retry_after_passes(pair):
    gateway, primary, _ = pair
    primary.on(
        "POST",
        "/v1/chat/completions",
        reply_json(
            {"error": {"message": "slow down", "type": "rate_limit_error"}}, status=429, headers={"Retry-After": "30"}
        ),
    )

    first, second = ask(gateway), ask(gateway)

    assert first.headers["x-eldric-backend"] == second.headers["x-eldric-backend"] == "secondary"
    # The second request did not even try the rate-limited backend.
    assert len(primary.requests_to("/v1/chat/completions")) == 1


def test_rate_limit_on_the_only_backend_is_returned_with_retry_after(gateway, fake_provider):
    only = fake_provider("only")
    only.on(
        "POST",
        "/v1/chat/completions",
        reply_json({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "7"}),
    )
    gateway.route((route_for(only), ["gpt-4o"]))

    with pytest.raises(openai.RateLimitError) as caught:
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0).chat.completions.create(
            model="gpt-4o", messages=USER
        )

    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(400, recordings.response("openai", "error_400_web_search_not_supported"), id="400"),
        pytest.param(401, recordings.response("openai", "error_401_invalid_api_key"), id="401"),
        pytest.param(404, recordings.response("openai", "error_404_model_not_found", 1), id="404"),
        pytest.param(413, b'{"error": {"message": "too large", "type": "invalid_request_error"}}', id="413"),
        pytest.param(
            422, b'{"object": "error", "message": "extra_forbidden", "type": "invalid_request_error"}', id="422"
        ),
        pytest.param(
            400,
            b'{"error": {"message": "Your request was rejected by our safety system.",'
            b' "code": "content_policy_violation"}}',
            id="content-policy",
        ),
    ],
)
def test_client_errors_do_not_fail_over(pair, status, body):
    gateway, primary, secondary = pair
    primary.on("POST", "/v1/chat/completions", reply_bytes(body, status=status))

    response = ask(gateway)

    assert response.status_code == status
    assert response.headers["x-eldric-backend"] == "primary"
    assert secondary.received == []


def test_attempts_stop_at_the_configured_maximum(gateway, fake_provider):
    gateway.configure(max_attempts=2)
    fakes = [fake_provider(f"b{i}") for i in range(3)]
    for fake in fakes:
        fake.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "down"}}, status=503))
    gateway.route(*((route_for(f, priority=i), ["gpt-4o"]) for i, f in enumerate(fakes)))

    response = ask(gateway)

    assert response.status_code == 503
    assert [len(f.received) for f in fakes] == [1, 1, 0]


def test_stream_dropped_half_way_ends_with_an_error_event_then_done(gateway, fake_provider):
    fake = fake_provider("flaky")
    frames = recordings.sse_frames(recordings.response("openai", "chat_stream_text"))
    fake.on("POST", "/v1/chat/completions", reply_stream(frames, drop_after=3))
    gateway.route((route_for(fake), ["gpt-4o"]))

    response = ask(gateway, stream=True)

    events = [e for e in response.text.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    error = json.loads(events[-2].removeprefix("data: "))["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "flaky" in error["message"]
    assert len(events) == 3 + 2  # three relayed frames, the error, [DONE]


def test_stream_dropped_half_way_raises_in_the_openai_sdk(gateway, fake_provider):
    fake = fake_provider("flaky")
    frames = recordings.sse_frames(recordings.response("openai", "chat_stream_text"))
    fake.on("POST", "/v1/chat/completions", reply_stream(frames, drop_after=3))
    gateway.route((route_for(fake), ["gpt-4o"]))
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="k", max_retries=0)

    with pytest.raises(openai.APIError, match="flaky"):
        for _ in client.chat.completions.create(model="gpt-4o", messages=USER, stream=True):
            pass


def test_circuit_opens_after_consecutive_failures_then_recovers_after_cooldown(gateway, fake_provider):
    gateway.configure(breaker_failures=3, breaker_cooldown=0.5)
    primary, secondary = fake_provider("primary"), fake_provider("secondary")
    primary.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "down"}}, status=502))
    secondary.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(primary, priority=1), ["gpt-4o"]), (route_for(secondary, priority=2), ["gpt-4o"]))

    for _ in range(3):
        assert ask(gateway).headers["x-eldric-backend"] == "secondary"
    # Open: the failing backend is no longer contacted at all.
    assert ask(gateway).headers["x-eldric-backend"] == "secondary"
    assert len(primary.received) == 3
    with gateway.client() as client:
        assert client.get("/health").json()["backends"]["unhealthy"] == 1

    # The backend comes back; after the cool-down one trial request closes the circuit.
    primary.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    time.sleep(0.6)
    assert ask(gateway).headers["x-eldric-backend"] == "primary"
    assert ask(gateway).headers["x-eldric-backend"] == "primary"
    with gateway.client() as client:
        assert client.get("/health").json()["status"] == "healthy"


def test_failed_half_open_trial_reopens_the_circuit(gateway, fake_provider):
    gateway.configure(breaker_failures=1, breaker_cooldown=0.3)
    primary, secondary = fake_provider("primary"), fake_provider("secondary")
    primary.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "down"}}, status=500))
    secondary.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(primary, priority=1), ["gpt-4o"]), (route_for(secondary, priority=2), ["gpt-4o"]))

    ask(gateway)  # opens
    time.sleep(0.35)
    ask(gateway)  # half-open trial fails -> open again
    ask(gateway)  # skipped while open

    assert len(primary.received) == 2


def test_overloaded_backend_fails_over_without_opening_its_circuit(gateway, fake_provider):
    gateway.configure(breaker_failures=1)
    primary, secondary = fake_provider("primary"), fake_provider("secondary")
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    primary.on("POST", "/v1/chat/completions", reply_json(overloaded, status=529))
    secondary.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(primary, priority=1), ["gpt-4o"]), (route_for(secondary, priority=2), ["gpt-4o"]))

    assert ask(gateway).headers["x-eldric-backend"] == "secondary"
    # Overload is not a fault: the next request tries the primary again.
    primary.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    assert ask(gateway).headers["x-eldric-backend"] == "primary"


def test_a_redirecting_backend_is_not_followed_and_fails_over(pair):
    gateway, primary, _ = pair
    primary.on(
        "POST",
        "/v1/chat/completions",
        reply_bytes(b"", status=301, headers={"Location": "https://elsewhere.example/v1/chat/completions"}),
    )

    response = ask(gateway)

    assert response.headers["x-eldric-backend"] == "secondary"
    assert len(primary.received) == 1
