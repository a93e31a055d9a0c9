"""Upstreams that lie, boast, echo the key or ask to be left alone for ever."""

import dataclasses
import gzip
import json
import zlib

import pytest

from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import reply_bytes, reply_json, reply_stream

USER = [{"role": "user", "content": "hi"}]
KEY = "sk-hostile-upstream-key-0001"
ANSWER = recordings.response("openai", "chat_text")


def chat(gateway):
    with gateway.client() as client:
        return client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})


@pytest.fixture
def one(gateway, fake_provider):
    fake = fake_provider("liar")
    gateway.route((route_for(fake, key=KEY), ["gpt-4o"]))
    return gateway, fake


@pytest.mark.parametrize(
    "body",
    [b"<html>captive portal</html>", b'{"id": "chatcmpl-1", "choices": [', b"", b"[1, 2]"],
    ids=["html", "truncated", "empty", "array"],
)
def test_a_200_that_is_not_json_is_502_not_relayed(one, body):
    gateway, fake = one
    fake.on("POST", "/v1/chat/completions", reply_bytes(body))

    response = chat(gateway)

    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["code"] == "upstream_invalid_response"
    assert response.headers["x-eldric-backend"] == "liar"


def test_a_200_that_is_not_json_fails_over_to_the_next_backend(gateway, fake_provider):
    liar, honest = fake_provider("liar"), fake_provider("honest")
    liar.on("POST", "/v1/chat/completions", reply_bytes(b"<html>"))
    honest.on("POST", "/v1/chat/completions", reply_bytes(ANSWER))
    gateway.route((route_for(liar, priority=1), ["gpt-4o"]), (route_for(honest, priority=2), ["gpt-4o"]))

    response = chat(gateway)

    assert response.status_code == 200 and response.headers["x-eldric-backend"] == "honest"


def test_an_answer_over_the_size_limit_is_502(one):
    gateway, fake = one
    gateway.configure(max_response_bytes=64 * 1024)
    fake.on("POST", "/v1/chat/completions", reply_bytes(b'{"pad": "' + b"x" * 200_000 + b'"}'))

    response = chat(gateway)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_response_too_large"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_an_answer_compressed_though_the_gateway_asked_for_identity_reaches_the_client_decoded(one, encoding):
    gateway, fake = one
    packed = gzip.compress(ANSWER) if encoding == "gzip" else zlib.compress(ANSWER)
    fake.on("POST", "/v1/chat/completions", reply_bytes(packed, headers={"content-encoding": encoding}))

    response = chat(gateway)

    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert json.loads(response.content) == json.loads(ANSWER)
    assert fake.requests_to("/v1/chat/completions")[0].headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_answer_that_says_gzip_and_is_not_is_502_not_a_500(one, stream):
    gateway, fake = one
    body, content_type = (
        (b"data: not gzip\n\n", "text/event-stream") if stream else (b"\x1f\x8b\x08 cut", "application/json")
    )
    fake.on(
        "POST",
        "/v1/chat/completions",
        reply_bytes(body, content_type=content_type, headers={"content-encoding": "gzip"}),
    )

    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER, "stream": stream})

    if stream:  # the status was sent before the body could be read: an error event ends it
        assert response.status_code == 200
        events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
        assert [event["error"]["code"] for event in events] == ["upstream_stream_error"]
        assert "compression" in events[0]["error"]["message"]
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "upstream_unreachable"
        assert "compression" in response.json()["error"]["message"]
    assert "Traceback" not in response.text


def test_a_compressed_answer_that_unpacks_past_the_size_limit_is_502(one):
    gateway, fake = one
    gateway.configure(max_response_bytes=1024 * 1024)
    bomb = gzip.compress(b'{"pad": "' + b"0" * (50 * 1024 * 1024) + b'"}')  # about 50 KB on the wire
    fake.on("POST", "/v1/chat/completions", reply_bytes(bomb, headers={"content-encoding": "gzip"}))

    response = chat(gateway)

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_response_too_large"


@pytest.mark.parametrize("value", ["inf", "1e400", "nan", "-5", "soon", "99999999999"])
def test_a_wild_retry_after_is_capped_and_never_a_500(gateway, fake_provider, value):
    busy, spare = fake_provider("busy"), fake_provider("spare")
    busy.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "slow down"}}, status=429,
                                                       headers={"Retry-After": value}))  # fmt: skip
    spare.on("POST", "/v1/chat/completions", reply_json({"error": {"message": "slow down"}}, status=429))
    gateway.route((route_for(busy, priority=1), ["gpt-4o"]), (route_for(spare, priority=2), ["gpt-4o"]))

    response = chat(gateway)

    assert response.status_code == 429
    # The backend is skipped for at most the configured cap, never for the life of the process.
    assert gateway.gateway.breakers.blocked_for("busy") <= gateway.gateway.config.retry_after_max


def test_a_key_echoed_in_every_error_field_and_header_is_redacted(one):
    gateway, fake = one
    echoed = {"error": {"message": f"bad key {KEY}", "type": f"t-{KEY}", "param": KEY, "code": f"c-{KEY}"}}
    fake.on(
        "POST",
        "/v1/chat/completions",
        reply_json(echoed, status=401, headers={"x-request-id": f"id-{KEY}", "x-ratelimit-limit-requests": KEY}),
    )

    response = chat(gateway)

    assert response.status_code == 401
    assert KEY not in response.text
    assert all(KEY not in value for value in response.headers.values())
    assert "[redacted]" in response.json()["error"]["message"]


def test_a_key_echoed_in_the_headers_of_a_success_is_redacted_and_only_allowed_headers_pass(one):
    gateway, fake = one
    fake.on(
        "POST",
        "/v1/chat/completions",
        reply_bytes(
            ANSWER,
            headers={
                "x-request-id": f"req-{KEY}",
                "x-ratelimit-remaining-requests": "99",
                "set-cookie": "session=abc",
                "x-internal-host": "10.0.0.5:8000",
            },
        ),
    )

    response = chat(gateway)

    assert response.status_code == 200
    assert all(KEY not in value for value in response.headers.values())
    assert response.headers["x-ratelimit-remaining-requests"] == "99"
    assert "set-cookie" not in response.headers and "x-internal-host" not in response.headers
    assert json.loads(response.content) == json.loads(ANSWER)


def test_a_cookie_an_upstream_sets_is_never_sent_back_on_a_later_request(gateway, fake_provider):
    # One connection pool serves every caller: a kept cookie would be replayed for the others.
    # By host name: a cookie jar that refuses cookies from IP addresses would hide a kept one.
    fake = fake_provider("baker")
    route = route_for(fake, key=KEY)
    gateway.route((dataclasses.replace(route, url=route.url.replace("127.0.0.1", "localhost")), ["gpt-4o"]))
    fake.on(
        "POST",
        "/v1/chat/completions",
        reply_bytes(ANSWER, headers={"set-cookie": "session=caller-a; Path=/; Max-Age=3600"}),
    )

    assert chat(gateway).status_code == 200
    assert chat(gateway).status_code == 200

    sent = [request.headers for request in fake.requests_to("/v1/chat/completions")]
    assert len(sent) == 2
    assert all("cookie" not in {name.lower() for name in headers} for headers in sent)


def test_an_upstream_error_naming_its_own_address_reaches_the_client_without_it(one):
    gateway, fake = one
    address = f"127.0.0.1:{fake.port}"
    fake.on(
        "POST", "/v1/chat/completions", reply_json({"error": {"message": f"upstream {address} failed"}}, status=400)
    )

    response = chat(gateway)

    assert response.status_code == 400
    assert address not in response.text
    assert response.json()["error"]["message"] == "upstream [backend] failed"


@pytest.mark.parametrize("kind", ["openai_compatible", "anthropic"])
def test_a_stream_line_that_never_ends_is_cut_off_at_the_limit(gateway, fake_provider, kind):
    gateway.configure(max_stream_line_bytes=64 * 1024)
    fake = fake_provider("flood")
    endless = [b"data: {" + b"x" * 8192 for _ in range(200)]  # 1.6 MB, never a newline
    path = "/v1/chat/completions" if kind == "openai_compatible" else "/messages"
    fake.on("POST", path, reply_stream(endless))
    gateway.route((route_for(fake, kind=kind, path="/v1" if kind == "openai_compatible" else ""), ["m"]))

    with gateway.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "m", "messages": USER, "stream": True})

    events = [e for e in response.text.split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[-2].removeprefix("data: "))["error"]["code"] == "upstream_invalid_response"
    assert len(response.content) < 256 * 1024
