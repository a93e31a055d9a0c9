"""Rate limits through the real in-process gateway, with the counters in memory and in a real
Redis (each test runs on both stores)."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from tests.conftest import route_for
from tests.fakes.server import hold_until_closed
from tests.keys.conftest import COMPLETION_TOKENS, MODEL, PROMPT_TOKENS, USER, chat, chat_reply, chat_stream, settled

RESET = re.compile(r"^(\d+ms|\d+(\.\d+)?s|\d+m\d+s|\d+h\d+m\d+s)$")


def rate_headers(response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("x-ratelimit-")}


def test_rpm_answers_429_with_openai_headers_past_the_limit(limited, keys):
    key = keys.add(rpm=3)
    with limited.client() as client:
        answers = [chat(client, key) for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert [r.headers["x-ratelimit-remaining-requests"] for r in answers] == ["2", "1", "0", "0", "0"]
    for response in answers:
        assert response.headers["x-ratelimit-limit-requests"] == "3"
        assert RESET.match(response.headers["x-ratelimit-reset-requests"]), response.headers
    refused = answers[3]
    assert refused.json()["error"]["type"] == "requests"
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_the_sdk_raises_rate_limit_error_with_the_code(limited, keys):
    sdk = openai.OpenAI(base_url=limited.url + "/v1", api_key=keys.add(rpm=1), max_retries=0)
    sdk.chat.completions.create(model=MODEL, messages=USER)
    with pytest.raises(openai.RateLimitError) as refused:
        sdk.chat.completions.create(model=MODEL, messages=USER)
    assert refused.value.status_code == 429
    assert refused.value.code == "rate_limit_exceeded"
    assert refused.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_headers_are_on_every_response_of_a_limited_key(limited, keys, upstream):
    key = keys.add(rpm=100, tpm=100_000)
    with limited.client() as client:
        ok = chat(client, key)
        stream = chat(client, key, stream=True)
        upstream.on("POST", "/v1/chat/completions", _fail)
        failed = chat(client, key)
        unknown_model = client.post(
            "/v1/chat/completions", json={"model": "nope", "messages": USER}, headers={"Authorization": f"Bearer {key}"}
        )
        unlimited = chat(client, keys.add())
    for response in (ok, stream, failed, unknown_model):
        headers = rate_headers(response)
        assert set(headers) == {
            f"x-ratelimit-{what}-{kind}" for what in ("limit", "remaining", "reset") for kind in ("requests", "tokens")
        }, (response.status_code, response.headers)
        assert headers["x-ratelimit-limit-tokens"] == "100000"
    assert failed.status_code >= 500
    assert rate_headers(unlimited) == {}


def test_answers_that_are_not_counted_carry_the_last_counts(limited, keys):
    # A malformed body and a model the key may not use are refused before anything is counted;
    # they still carry the headers, with the counts as this gateway last saw them.
    key = keys.add(rpm=10, tpm=100_000, models=(MODEL,))
    auth = {"Authorization": f"Bearer {key}"}
    with limited.client() as client:
        before = client.post("/v1/chat/completions", content=b"{not json", headers=auth)
        chat(client, key)
        malformed = client.post("/v1/chat/completions", content=b"{not json", headers=auth)
        forbidden = client.post("/v1/chat/completions", json={"model": "other", "messages": USER}, headers=auth)
        after = chat(client, key)
    assert (before.status_code, malformed.status_code, forbidden.status_code) == (400, 400, 403)
    assert before.headers["x-ratelimit-remaining-requests"] == "10"  # nothing seen yet: a full window
    for response in (malformed, forbidden):
        assert response.headers["x-ratelimit-limit-requests"] == "10"
        assert response.headers["x-ratelimit-remaining-requests"] == "9"  # not counted themselves
        assert RESET.match(response.headers["x-ratelimit-reset-requests"])
    assert after.headers["x-ratelimit-remaining-requests"] == "8"


async def _fail(request):
    from aiohttp import web

    return web.json_response({"error": {"message": "boom", "type": "server_error"}}, status=500)


def test_a_streamed_answer_carries_the_headers_and_settles_its_tokens(limited, keys, upstream):
    upstream.on("POST", "/v1/chat/completions", chat_stream())
    key = keys.add(tpm=10_000)
    with limited.client() as client:
        stream = chat(client, key, stream=True, max_tokens=500)
        assert stream.status_code == 200
        assert "[DONE]" in stream.text
        settled(limited, 1)
        after = chat(client, key, max_tokens=0)
    # The stream reserved 500 + its size / 4 and settled to its real usage: 42 tokens.
    used = 10_000 - int(after.headers["x-ratelimit-remaining-tokens"])
    body_size = len(json.dumps({"model": MODEL, "messages": USER, "max_tokens": 0}))
    assert used == PROMPT_TOKENS + COMPLETION_TOKENS + body_size // 4


def test_tpm_reserves_the_estimate_then_settles_to_real_usage(limited, keys):
    key = keys.add(tpm=1000)
    body_size = len(json.dumps({"model": MODEL, "messages": USER, "max_tokens": 600}))
    estimate = 600 + body_size // 4
    with limited.client() as client:
        first = chat(client, key, max_tokens=600)
        # While the first is reserved, a second one that would pass the limit is refused...
        assert first.headers["x-ratelimit-remaining-tokens"] == str(1000 - estimate)
        settled(limited, 1)
        # ...but once it settled to its real usage (42 tokens), the same request fits.
        second = chat(client, key, max_tokens=600)
        assert second.status_code == 200, second.text
        real = PROMPT_TOKENS + COMPLETION_TOKENS
        assert second.headers["x-ratelimit-remaining-tokens"] == str(1000 - real - estimate)
        settled(limited, 2)
        third = chat(client, key, max_tokens=900)
    assert third.status_code == 429
    assert third.json()["error"]["type"] == "tokens"
    assert third.json()["error"]["code"] == "rate_limit_exceeded"
    assert "retry-after" in third.headers


def test_tpm_refuses_while_an_estimate_is_reserved(limited, keys, upstream):
    release = threading.Event()
    upstream.on("POST", "/v1/chat/completions", _held(release))
    key = keys.add(tpm=1000)
    with limited.client() as client, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(chat, client, key, max_tokens=800)
        _wait_for_upstream(upstream, 1)
        refused = chat(client, key, max_tokens=800)
        release.set()
        assert slow.result().status_code == 200
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"


def _held(release: threading.Event):
    import asyncio

    reply = chat_reply()

    async def behaviour(request):
        while not release.is_set():
            await asyncio.sleep(0.01)
        return await reply(request)

    return behaviour


def _wait_for_upstream(fake, count: int, timeout: float = 10) -> None:
    import time

    deadline = time.monotonic() + timeout
    while len(fake.requests_to("/v1/chat/completions")) < count:
        assert time.monotonic() < deadline, "the upstream did not get the request"
        time.sleep(0.01)


def test_concurrency_limit_counts_requests_in_flight(limited, keys, upstream):
    release = threading.Event()
    upstream.on("POST", "/v1/chat/completions", _held(release))
    key = keys.add(max_concurrent=3)
    with limited.client() as client, ThreadPoolExecutor(8) as pool:
        held = [pool.submit(chat, client, key) for _ in range(3)]
        _wait_for_upstream(upstream, 3)
        refused = [chat(client, key) for _ in range(4)]
        release.set()
        assert [f.result().status_code for f in held] == [200, 200, 200]
        settled(limited, 7)
        # Every slot came back: three more fit at once again.
        again = [pool.submit(chat, client, key) for _ in range(3)]
        assert [f.result().status_code for f in again] == [200, 200, 200]
    assert {r.status_code for r in refused} == {429}
    assert refused[0].json()["error"]["code"] == "rate_limit_exceeded"
    assert refused[0].headers["retry-after"] == "1"


def test_a_slot_is_released_when_the_client_leaves_or_the_upstream_fails(limited, keys, upstream, fake_provider):
    closed = threading.Event()
    upstream.on("POST", "/v1/chat/completions", hold_until_closed(closed))
    key = keys.add(max_concurrent=1)
    with httpx.Client(base_url=limited.url, timeout=0.5) as impatient, pytest.raises(httpx.ReadTimeout):
        chat(impatient, key)
    assert closed.wait(10)
    settled(limited, 1)
    dead = fake_provider("dead")
    dead.stop()
    limited.route((route_for(dead), [MODEL]))
    with limited.client() as client:
        assert chat(client, key).status_code >= 500
        settled(limited, 2)
        limited.route((route_for(upstream), [MODEL]))
        upstream.on("POST", "/v1/chat/completions", chat_reply())
        assert chat(client, key).status_code == 200
