import os

import pytest

from backends.snapshot import BackendRoute, RoutingSnapshot
from tests.fakes.server import FakeProvider

REQUIRE_SERVICES = os.environ.get("ELDRIC_REQUIRE_SERVICES") == "1"


def service_missing(what: str) -> None:
    """Fail under CI (ELDRIC_REQUIRE_SERVICES=1), skip on a laptop without the service."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (ELDRIC_REQUIRE_SERVICES=1) but not reachable")
    pytest.skip(f"{what} not reachable")


@pytest.fixture
def fake_provider():
    started: list[FakeProvider] = []

    def make(name: str = "fake") -> FakeProvider:
        fake = FakeProvider(name=name).start()
        started.append(fake)
        return fake

    yield make
    for fake in started:
        fake.stop()


@pytest.fixture
def gateway(settings):
    """A real gateway server in this process, with fresh per-process state."""
    from gateway import failures
    from gateway.config import config
    from gateway.snapshot import holder
    from tests.gateway_server import GatewayServer

    config.cache_clear()
    failures._board = None
    server = GatewayServer().start()
    yield server
    server.stop()
    holder.install(RoutingSnapshot())
    config.cache_clear()
    failures._board = None


def route_for(
    fake: FakeProvider,
    name: str | None = None,
    *,
    kind: str = "openai_compatible",
    key: str = "sk-test-key-0001",
    priority: int = 1,
    health: str = "healthy",
    path: str = "/v1",
    **extra,
) -> BackendRoute:
    return BackendRoute(
        name=name or fake.name,
        kind=kind,
        url=fake.url + path,
        api_key=key,
        api_key_hint="sk-…0001",
        priority=priority,
        health=health,
        **extra,
    )
