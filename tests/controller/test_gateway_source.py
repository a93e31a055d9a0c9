"""The heartbeat reads a real gateway: requests served through it (openai SDK) show up at the
reference controller, with the gateway's backends, models and license tier."""

from __future__ import annotations

import asyncio

import openai

from eldric_cloud.controller.source import GatewayLoadSource
from tests.conftest import route_for
from tests.controller.conftest import eventually
from tests.fakes import recordings
from tests.fakes.server import reply_bytes

USER = [{"role": "user", "content": "What is 4200 + 42?"}]


async def test_the_heartbeat_reports_what_the_gateway_served(gateway, fake_provider, stub, controller_client):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    down = fake_provider("spare")
    gateway.route((route_for(fake), ["gpt-4o"]), (route_for(down, health="unhealthy", priority=2), ["gpt-4o-mini"]))
    source = GatewayLoadSource.attach(gateway.gateway, connections=lambda: 7)
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key="client-key", max_retries=0)

    def chat_three_times() -> None:
        for _ in range(3):
            sdk.chat.completions.create(model="gpt-4o", messages=USER)

    await asyncio.to_thread(chat_three_times)
    await eventually(lambda: source.last_minute().requests == 3, what="the window to count 3 requests")
    server = await stub()
    client = controller_client(server.url, source)
    client.start()

    worker = await eventually(lambda: server.registry.get("cld-0000test"), what="registration")

    assert worker["worker_type"] == "cloud"
    assert worker["status"] == "online"
    assert worker["models"] == ["gpt-4o", "gpt-4o-mini"]
    assert worker["load"]["last_minute"]["requests"] == 3
    assert worker["load"]["last_minute"]["errors"] == 0
    assert worker["load"]["last_minute"]["p50_latency_ms"] is not None
    assert worker["load"]["active_connections"] == 7
    assert worker["load"]["requests_in_flight"] == 0
    assert worker["license"] == {"tier": "free"}
    states = {b["name"]: b["state"] for b in worker["backends"]}
    assert states == {"openai": "healthy", "spare": "unhealthy"}
    assert worker["backends_summary"] == {"total": 2, "healthy": 1, "unhealthy": 1}
    # The gateway's own /health word (one of two backends is out); "status" is the controller's.
    assert worker["health"] == "degraded"
    assert "sk-test-key" not in str(worker)  # no upstream key, no upstream URL
    assert fake.url not in str(worker)


async def test_a_draining_gateway_says_so(gateway):
    source = GatewayLoadSource.attach(gateway.gateway)

    gateway.gateway.begin_drain()

    assert source.status() == "draining"
    assert source.active_connections() == 0  # without a connection count: the requests in flight
