"""Moving a running client to another controller, as a config reload does: the old one hears
a deregistration, the new one a registration at once, and ``/health`` names the new one."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sys
import types

import openai
from aiohttp import web

from eldric_cloud.controller.build import controller_client_build, controller_url_apply
from tests.conftest import route_for
from tests.controller.conftest import eventually
from tests.fakes import recordings
from tests.fakes.server import reply_bytes

WORKER = "cld-1234abcd"
GATEWAY_WORKER = "cld-0000test"  # the in-process gateway's routing snapshot
USER = [{"role": "user", "content": "What is 4200 + 42?"}]


def status_at(server, worker_id: str = WORKER) -> str | None:
    worker = server.registry.get(worker_id)
    return worker["status"] if worker else None


async def test_retarget_deregisters_from_the_old_controller_and_registers_with_the_new_at_once(
    stub, controller_client, caplog
):
    old, new = await stub(), await stub()
    # Heartbeats far apart: a registration at the new controller within the test's deadline
    # can only be the one the move sends at once.
    client = controller_client(old.url, heartbeat_seconds=3600)
    client.start()
    await eventually(lambda: client.controller_health()["registered"], what="registration with the old one")
    caplog.set_level(logging.INFO, logger="eldric_cloud.controller")

    assert await client.retarget(new.url) is True

    assert status_at(old) == "deregistered"
    await eventually(lambda: status_at(new) == "online", what="registration with the new one")
    health = await eventually(lambda: (h := client.controller_health())["registered"] and h, what="registered")
    assert health["url"] == new.url
    assert health["registrations"] == 1  # counts start afresh with the new controller
    moved = [r.getMessage() for r in caplog.records if " -> " in r.getMessage()]
    assert moved == [f"controller: {old.url} -> {new.url} (config reload)"]
    assert await client.retarget(new.url) is False  # the same URL: nothing to do


async def test_retarget_to_no_url_stops_the_client_and_a_url_starts_it_again(stub, controller_client):
    first, second = await stub(), await stub()
    client = controller_client(first.url)
    client.start()
    await eventually(lambda: status_at(first) == "online", what="registration")

    await client.retarget("")

    assert status_at(first) == "deregistered"
    assert client.controller_health() == {"configured": False, "state": "disabled"}
    beats = first.registry.get(WORKER)["heartbeats"]
    await asyncio.sleep(0.3)  # heartbeat_seconds is 0.1: a live task would have beaten again
    assert first.registry.get(WORKER)["heartbeats"] == beats

    await client.retarget(second.url)
    await eventually(lambda: status_at(second) == "online", what="registration after a URL came back")


async def test_a_client_built_without_a_url_starts_when_a_reload_thread_names_one(stub, controller_client):
    server = await stub()
    client = controller_client("")
    client.start()  # on the serving loop: only notes it
    assert client.controller_health()["state"] == "disabled"

    # The reloader's thread, while this loop keeps serving.
    assert await asyncio.to_thread(client.retarget_threadsafe, server.url) is True

    await eventually(lambda: status_at(server) == "online", what="registration")
    assert client.controller_health()["url"] == server.url


async def test_a_url_given_before_serving_began_is_the_one_start_uses(stub, controller_client):
    first, second = await stub(), await stub()
    client = controller_client(first.url)

    assert await asyncio.to_thread(client.retarget_threadsafe, second.url) is True
    client.start()

    await eventually(lambda: status_at(second) == "online", what="registration with the second")
    assert status_at(first) is None


@contextlib.asynccontextmanager
async def deaf_to_deregistration():
    """A controller that acknowledges heartbeats and never answers a DELETE."""

    async def put(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"status": "online"})

    async def delete(request: web.Request) -> web.Response:
        await asyncio.sleep(3600)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_put("/api/v1/workers/{worker_id}", put)
    app.router.add_delete("/api/v1/workers/{worker_id}", delete)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


async def test_an_old_controller_that_never_answers_the_deregistration_does_not_hold_the_move(
    stub, controller_client, caplog
):
    new = await stub()
    async with deaf_to_deregistration() as url:
        client = controller_client(url, deregister_timeout=0.3)
        client.start()
        await eventually(lambda: client.controller_health()["registered"], what="registration with the deaf one")

        # Bounded by the deregistration timeout, not by the hour the DELETE would take.
        await asyncio.wait_for(client.retarget(new.url), timeout=10)

        await eventually(lambda: status_at(new) == "online", what="registration with the new one")
    assert "could not deregister" in caplog.text and "no answer within 0.3s" in caplog.text


async def test_a_closed_client_is_not_started_again_by_a_move(stub, controller_client):
    first, second = await stub(), await stub()
    client = controller_client(first.url)
    client.start()
    await eventually(lambda: status_at(first) == "online", what="registration")
    await client.aclose()  # the drain began

    assert await client.retarget(second.url) is False
    await asyncio.sleep(0.3)
    assert status_at(second) is None


async def test_credentials_in_either_url_never_reach_the_log(stub, controller_client, caplog):
    first, second = await stub(), await stub()
    client = controller_client(first.url.replace("http://", "http://ops:old-pa55@"))
    client.start()
    await eventually(lambda: status_at(first) == "online", what="registration")
    caplog.set_level(logging.INFO, logger="eldric_cloud.controller")

    await client.retarget(second.url.replace("http://", "http://ops:new-pa55@"))
    await eventually(lambda: status_at(second) == "online", what="registration with the new one")

    assert f"controller: {first.url} -> {second.url} (config reload)" in caplog.text
    assert "pa55" not in caplog.text
    assert "pa55" not in str(client.controller_health())


async def test_controller_url_apply_reaches_the_running_gateways_client_and_its_window(
    gateway, fake_provider, stub, monkeypatch, settings
):
    settings.ELDRIC_CONTROLLER = ""
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    gateway.route((route_for(fake), ["gpt-4o"]))
    running = gateway.gateway
    # As eldric-cloudd builds it when started with --config and no controller.
    client = controller_client_build(running, controller_url="", bind_host="127.0.0.1", port=8889)
    running.controller = client
    monkeypatch.setitem(sys.modules, "eldric_cloud.asgi", types.SimpleNamespace(gateway=running))
    client.start()
    server = await stub()
    sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key="client-key", max_retries=0)
    chat = functools.partial(sdk.chat.completions.create, model="gpt-4o", messages=USER)
    try:
        await asyncio.to_thread(chat)  # no controller: not counted for a heartbeat
        assert await asyncio.to_thread(controller_url_apply, server.url) is True
        await eventually(lambda: status_at(server, GATEWAY_WORKER) == "online", what="registration")
        await asyncio.to_thread(chat)
        await eventually(lambda: client.source.last_minute().requests == 1, what="the window to count one request")

        assert await asyncio.to_thread(controller_url_apply, "") is True
        await eventually(lambda: status_at(server, GATEWAY_WORKER) == "deregistered", what="deregistration")
        assert client.controller_health() == {"configured": False, "state": "disabled"}
        await eventually(lambda: client.source.window not in running.observers, what="the window to stop counting")
    finally:
        await client.aclose()


async def test_controller_url_apply_falls_back_to_the_environments_controller(
    stub, controller_client, monkeypatch, settings
):
    first, fallback = await stub(), await stub()
    settings.ELDRIC_CONTROLLER = fallback.url
    gateway = types.SimpleNamespace(observers=[], controller=None)
    gateway.controller = client = controller_client(first.url)
    monkeypatch.setitem(sys.modules, "eldric_cloud.asgi", types.SimpleNamespace(gateway=gateway))
    client.start()
    await eventually(lambda: status_at(first) == "online", what="registration")

    # The file no longer names a controller: ELDRIC_CONTROLLER does, as at start-up.
    await asyncio.to_thread(controller_url_apply, "")

    await eventually(lambda: status_at(fallback) == "online", what="registration with ELDRIC_CONTROLLER's")
    assert status_at(first) == "deregistered"


def test_without_a_running_gateway_there_is_nothing_to_move(monkeypatch, settings):
    settings.ELDRIC_CONTROLLER = ""
    monkeypatch.delitem(sys.modules, "eldric_cloud.asgi", raising=False)
    assert controller_url_apply("http://127.0.0.1:9/") is False
    assert "eldric_cloud.asgi" not in sys.modules  # not imported (that would build the application)
