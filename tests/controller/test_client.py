"""The client against the real reference controller over 127.0.0.1."""

from __future__ import annotations

import asyncio
import time

import pytest

from eldric_cloud.controller.protocol import models_hash
from tests.controller.conftest import eventually, loop_lag_while
from tests.controller.helpers import StaticSource, black_hole
from tests.fakes.server import free_port

WORKER = "cld-1234abcd"


def stub_worker(server):
    return server.registry.get(WORKER)


async def test_registers_then_heartbeats_without_resending_an_unchanged_list(stub, controller_client):
    server = await stub()
    source = StaticSource()
    client = controller_client(server.url, source)

    client.start()
    worker = await eventually(lambda: (w := stub_worker(server)) and w["heartbeats"] >= 4 and w, what="4 beats")

    assert worker["registrations"] == 1  # the list went once; later beats carried its hash
    assert worker["status"] == "online"
    assert worker["worker_type"] == "cloud"
    assert worker["models"] == sorted(source.model_list)
    assert worker["models_hash"] == models_hash(source.model_list)
    assert worker["load"]["active_connections"] == 5
    assert worker["load"]["requests_in_flight"] == 2
    assert worker["load"]["last_minute"]["requests"] == 10
    assert worker["license"] == {"tier": "standard"}
    assert [b["name"] for b in worker["backends"]] == ["xai", "groq"]
    health = client.controller_health()
    assert health["registered"] is True
    assert health["state"] == "registered"
    assert health["consecutive_failures"] == 0
    assert health["worker_id"] == WORKER
    assert health["last_success"] is not None


async def test_a_changed_model_list_is_sent_again(stub, controller_client):
    server = await stub()
    source = StaticSource()
    client = controller_client(server.url, source)
    client.start()
    await eventually(lambda: (w := stub_worker(server)) and w["heartbeats"] >= 2, what="2 beats")

    source.model_list = [*source.model_list, "grok-4"]

    worker = await eventually(lambda: (w := stub_worker(server)) and w["registrations"] == 2 and w, what="new list")
    assert "grok-4" in worker["models"]
    assert worker["models_hash"] == models_hash(source.model_list)


async def test_a_graceful_close_deregisters(stub, controller_client):
    server = await stub()
    client = controller_client(server.url)
    client.start()
    # Registered as the client knows it: the stub records the worker before the client reads
    # the answer, and a client that never heard back has nothing to deregister.
    await eventually(lambda: stub_worker(server) and client.state.last_success is not None, what="registration")

    await client.aclose()

    assert stub_worker(server)["status"] == "deregistered"
    assert client.deregistered
    beats = stub_worker(server)["heartbeats"]
    await asyncio.sleep(0.3)
    assert stub_worker(server)["heartbeats"] == beats  # the task is gone


async def test_a_restarted_controller_answers_404_and_gets_a_full_registration(stub, controller_client):
    port = free_port()
    first = await stub(port=port)
    client = controller_client(first.url)
    client.start()
    await eventually(lambda: (w := stub_worker(first)) and w["heartbeats"] >= 2, what="2 beats")
    await first.stop()

    second = await stub(port=port)  # empty memory: the next hash-only beat is unknown
    worker = await eventually(lambda: stub_worker(second), what="re-registration")

    assert worker["models"] == sorted(StaticSource().model_list)
    await eventually(lambda: stub_worker(second)["heartbeats"] >= 3, what="beats after re-registration")
    assert client.controller_health()["state"] == "registered"


async def test_the_cluster_secret_is_sent_and_checked(stub, controller_client):
    server = await stub(secret="s3cret-value")
    good = controller_client(server.url, secret="s3cret-value")
    bad = controller_client(server.url, StaticSource(worker="cld-badbad00"), secret="n0t-th3-s3cr3t")

    good.start()
    bad.start()
    await eventually(lambda: stub_worker(server), what="registration with the secret")
    await eventually(lambda: bad.controller_health()["consecutive_failures"] >= 2, what="refusals")

    assert server.registry.get("cld-badbad00") is None
    health = bad.controller_health()
    assert health["state"] == "failing"
    assert "HTTP 401" in health["last_error"]
    assert "ELDRIC_CLUSTER_SECRET" in health["last_error"]
    assert "s3cret-value" not in str(health) and "n0t-th3" not in str(health)


async def test_a_controller_that_is_down_is_retried_with_back_off_and_serving_is_unaffected(stub, controller_client):
    port = free_port()  # nothing listens here yet
    client = controller_client(f"http://127.0.0.1:{port}")

    client.start()
    lag = await loop_lag_while(1.0)

    health = client.controller_health()
    assert health["state"] == "failing"
    assert health["registered"] is False
    # Back-off capped at 0.2 s here: about 5-10 tries in a second, never a tight loop.
    assert 2 <= health["consecutive_failures"] <= 40
    assert health["last_error"] == "cannot connect"
    assert lag < 0.5  # generous bound

    server = await stub(port=port)  # the controller comes up: the client recovers by itself
    await eventually(lambda: stub_worker(server), what="registration after recovery")
    await eventually(lambda: client.controller_health()["consecutive_failures"] == 0, what="recovered state")


async def test_a_slow_controller_times_out_and_never_blocks_the_loop(controller_client):
    async with black_hole() as url:
        # A client that blocked would stall this loop for the whole 2 s timeout.
        client = controller_client(url, timeout=2.0)
        client.start()
        lag = await loop_lag_while(1.0)
        await eventually(lambda: client.controller_health()["consecutive_failures"] >= 1, what="the timeout")
        health = client.controller_health()

    assert lag < 0.5
    assert health["state"] == "failing"
    assert health["last_error"] == "no answer within 2s"


async def test_one_beat_against_a_slow_controller_is_bounded_by_the_timeout(controller_client):
    async with black_hole() as url:
        client = controller_client(url, timeout=0.3)
        client.start()  # opens the HTTP client; the background task runs too
        started = time.monotonic()
        await client.beat_once()
        took = time.monotonic() - started

    assert took < 3.0  # 0.3 s in principle; generous bound


async def test_no_controller_url_means_no_task_and_a_disabled_health_entry(controller_client):
    from eldric_cloud.controller.client import controller_health

    client = controller_client("")
    client.start()

    assert client.controller_health() == {"configured": False, "state": "disabled"}
    assert controller_health(None) == {"configured": False, "state": "disabled"}
    await client.aclose()


async def test_a_controller_url_with_credentials_never_shows_them(stub, controller_client):
    server = await stub()
    client = controller_client(server.url.replace("http://", "http://ops:pa55word@"))
    client.start()
    await eventually(lambda: stub_worker(server), what="registration")

    assert "pa55word" not in str(client.controller_health())
    assert client.controller_health()["url"] == server.url


@pytest.mark.parametrize("path", ["/eldric/v1/nodes"])
async def test_the_workers_path_is_configurable(stub, controller_client, path):
    server = await stub(workers_path=path)
    right = controller_client(server.url, workers_path=path)
    wrong = controller_client(server.url, StaticSource(worker="cld-00000002"))
    right.start()
    wrong.start()

    await eventually(lambda: stub_worker(server), what="registration on the configured path")
    await eventually(lambda: wrong.controller_health()["consecutive_failures"] >= 1, what="404 on the default path")
    assert "ELDRIC_CONTROLLER_WORKERS_PATH" in wrong.controller_health()["last_error"]


async def test_a_controller_url_with_a_path_prefix_keeps_it(stub, controller_client):
    server = await stub(workers_path="/eldric/api/v1/workers")
    client = controller_client(server.url + "/eldric")
    client.start()

    await eventually(lambda: stub_worker(server), what="registration under the prefix")
    assert client.controller_health()["state"] == "registered"
