"""Fixtures for the controller tests: the real stub on 127.0.0.1 and a client factory."""

from __future__ import annotations

import asyncio
import time

import pytest

from eldric_cloud.controller.client import ControllerClient, ControllerConfig
from eldric_cloud.controller.protocol import WorkerAddress
from eldric_cloud.controller.stub import StubServer
from tests.controller.helpers import StaticSource


@pytest.fixture
async def stub():
    started: list[StubServer] = []

    async def make(**kwargs) -> StubServer:
        server = await StubServer(**kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
async def controller_client():
    """Builds clients with test-sized intervals; every one is closed at the end."""
    built: list[ControllerClient] = []

    def make(url: str, source=None, **config) -> ControllerClient:
        values = {"heartbeat_seconds": 0.1, "backoff_initial": 0.05, "backoff_max": 0.2, "timeout": 1.0}
        values.update(config)
        client = ControllerClient(
            source or StaticSource(),
            config=ControllerConfig(url=url, **values),
            address=WorkerAddress(url="http://127.0.0.1:8889", host="127.0.0.1", port=8889),
            instance="test",
        )
        built.append(client)
        return client

    yield make
    for client in built:
        await client.aclose()


async def eventually(check, timeout: float = 10.0, what: str = "condition"):
    """Poll ``check`` (sync) on the loop until it is truthy; fail after a generous deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def loop_lag_while(duration: float) -> float:
    """The worst delay a trivial coroutine sees on this loop over ``duration`` seconds."""
    worst = 0.0
    end = time.monotonic() + duration
    while time.monotonic() < end:
        before = time.monotonic()
        await asyncio.sleep(0.005)
        worst = max(worst, time.monotonic() - before - 0.005)
    return worst
