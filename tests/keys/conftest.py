"""Client keys and limits: a routed in-process gateway, keys installed in its access snapshot,
and a real Redis under a prefix of the test's own."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiohttp import web

from orgs.access import AccessSnapshot, KeyRecord, LimitSpec, OrgRecord
from orgs.keys import key_generate, key_hash
from tests.api.conftest import admin_token, api  # noqa: F401 - fixtures for the API tests
from tests.conftest import route_for, service_missing
from tests.e2e.conftest import postgres_url  # noqa: F401 - a fresh database per process test
from tests.fakes.server import reply_stream
from usage.pricing import PriceBook

REDIS_URL = "redis://127.0.0.1:6379/14"
MODEL = "gpt-4o"
USER = [{"role": "user", "content": "hi"}]
# What the fake provider reports for every chat completion.
PROMPT_TOKENS, COMPLETION_TOKENS = 12, 30


def chat_reply(delay: float = 0.0, prompt: int = PROMPT_TOKENS, completion: int = COMPLETION_TOKENS):
    async def behaviour(request: web.Request) -> web.Response:
        if delay:
            await asyncio.sleep(delay)
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }
        return web.json_response(body)

    return behaviour


def chat_stream():
    frames = [
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o",'
        b'"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n',
        b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],'
        + f'"usage":{{"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{COMPLETION_TOKENS},'.encode()
        + f'"total_tokens":{PROMPT_TOKENS + COMPLETION_TOKENS}}}}}\n\n'.encode(),
        b"data: [DONE]\n\n",
    ]
    return reply_stream(frames)


class FixedPrice(PriceBook):
    """Every priced request costs ``usd``; models in ``unpriced`` have no price."""

    def __init__(self, usd: float, unpriced: tuple[str, ...] = ()) -> None:
        self.usd = usd
        self.unpriced = unpriced

    def cost(self, model, backend, usage):
        return None if model in self.unpriced else self.usd


class Keys:
    """Installs client keys (and organisations) straight into a gateway's access snapshot."""

    def __init__(self, server) -> None:
        self.server = server
        self.keys: dict[str, KeyRecord] = {}
        self.organisations: dict[str, OrgRecord] = {"default": OrgRecord(id=1, slug="default")}
        self.version = 1
        # Key ids unique to this test: parallel tests share the Redis database.
        self._next_id = uuid.uuid4().int % 10**12

    def add(self, *, organisation: str = "default", models=(), expires_at=None, **limits) -> str:
        key = key_generate()
        self._next_id += 1
        self.keys[key_hash(key)] = KeyRecord(
            id=self._next_id,
            organisation=organisation,
            name=f"key {self._next_id}",
            prefix=key[4:12],
            models=tuple(models),
            limits=LimitSpec(**limits),
            expires_at=expires_at,
        )
        self.install()
        return key

    def organisation(self, slug: str, **limits) -> None:
        self.organisations[slug] = OrgRecord(id=len(self.organisations) + 1, slug=slug, limits=LimitSpec(**limits))
        self.install()

    def revoke(self, key: str) -> None:
        del self.keys[key_hash(key)]
        self.install()

    def install(self, prices: PriceBook | None = None) -> None:
        self.version += 1
        self.server.gateway.snapshots.install_access(
            AccessSnapshot(version=self.version, organisations=dict(self.organisations), keys=dict(self.keys)),
            prices,
        )


@pytest.fixture
def redis_prefix():
    """A Redis for the limiter, under a prefix of this test's own (deleted afterwards)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.ConnectionError:
        service_missing("Redis on 127.0.0.1:6379")
    prefix = f"eldtest:{uuid.uuid4().hex[:10]}:"
    yield prefix
    for name in client.scan_iter(match=prefix + "*"):
        client.delete(name)
    client.close()


@pytest.fixture
def upstream(fake_provider):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", chat_reply())
    return fake


@pytest.fixture
def routed(gateway, upstream):
    gateway.route((route_for(upstream), [MODEL, "gpt-4o-mini", "o3"]))
    return gateway


@pytest.fixture(params=["memory", "redis"])
def store(request):
    """Each limits test runs against both stores."""
    return request.param


@pytest.fixture
def limited(routed, store, request):
    """The routed gateway with its limits in memory or in Redis (by the ``store`` param)."""
    if store == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        routed.configure(limits_redis_url=REDIS_URL, limits_redis_prefix=prefix, limits_redis_timeout=5.0)
    return routed


@pytest.fixture
def keys(routed) -> Keys:
    return Keys(routed)


def chat(client, key: str | None, **extra):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": MODEL, "messages": USER, **extra}
    return client.post("/v1/chat/completions", content=json.dumps(body), headers=headers)


def settled(server, count: int, timeout: float = 10) -> list:
    """Wait until ``count`` requests finished and the limiter recorded their ends."""
    import time

    finished = server.recorder.wait_for(count, timeout)
    deadline = time.monotonic() + timeout
    while not server.gateway.limiter.store.idle:
        assert time.monotonic() < deadline, "the limiter did not record the request ends"
        time.sleep(0.005)
    return finished
