"""The same answers over both upstream transports: aiohttp called directly (the default) and
httpx's own (``ELDRIC_HTTP_TRANSPORT=httpx``)."""

from __future__ import annotations

import dataclasses
import json

import openai
import pytest

from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import free_port, reply_bytes, reply_json, reply_stream

KEY = "sk-transport-key-0001"
USER = [{"role": "user", "content": "hi"}]
ANSWER = recordings.response("openai", "chat_text")


@pytest.fixture(params=["aiohttp", "httpx"])
def over(request, gateway, fake_provider):
    gateway.configure(transport=request.param)
    fake = fake_provider("upstream")
    gateway.route((route_for(fake, key=KEY), ["gpt-4o"]))
    return gateway, fake


def sdk(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-anything", max_retries=0)


def test_a_chat_answer_and_its_allowed_headers_come_through(over):
    gateway, fake = over
    fake.on("POST", "/v1/chat/completions", reply_bytes(ANSWER, headers={"x-ratelimit-remaining-requests": "7"}))

    raw = sdk(gateway).chat.completions.with_raw_response.create(model="gpt-4o", messages=USER)

    assert raw.parse().choices[0].message.content == json.loads(ANSWER)["choices"][0]["message"]["content"]
    assert raw.headers["x-ratelimit-remaining-requests"] == "7"
    assert fake.requests_to("/v1/chat/completions")[0].headers["Authorization"] == f"Bearer {KEY}"


def test_a_stream_comes_through_event_by_event(over):
    gateway, fake = over
    frames = [
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":'
        + json.dumps([{"index": 0, "delta": {"content": word}, "finish_reason": None}]).encode()
        + b"}\n\n"
        for word in ("Hel", "lo")
    ] + [b"data: [DONE]\n\n"]
    fake.on("POST", "/v1/chat/completions", reply_stream(frames))

    chunks = sdk(gateway).chat.completions.create(model="gpt-4o", messages=USER, stream=True)

    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == "Hello"


def test_an_upstream_rate_limit_keeps_its_status_and_retry_after(over):
    gateway, fake = over
    error = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate_limited"}}
    fake.on("POST", "/v1/chat/completions", reply_json(error, status=429, headers={"retry-after": "7"}))

    with pytest.raises(openai.RateLimitError) as raised:
        sdk(gateway).chat.completions.create(model="gpt-4o", messages=USER)

    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "7"


def test_a_backend_that_refuses_connections_is_a_502_naming_it_and_not_its_address(over):
    gateway, _ = over
    port = free_port()
    dead = dataclasses.replace(route_for(_Nothing(port), key=KEY), name="dead")
    gateway.route((dead, ["gpt-4o"]))

    with pytest.raises(openai.APIStatusError) as raised:
        sdk(gateway).chat.completions.create(model="gpt-4o", messages=USER)

    assert raised.value.status_code == 502
    assert raised.value.code == "upstream_unreachable"
    assert "backend dead" in raised.value.message
    assert str(port) not in raised.value.message and KEY not in raised.value.message


@dataclasses.dataclass
class _Nothing:
    """Where no server listens."""

    port: int
    name: str = "dead"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
