import logging
import os
import re

import pytest

from backends.snapshot import BackendRoute
from tests.fakes.server import FakeProvider

REQUIRE_SERVICES = os.environ.get("ELDRIC_REQUIRE_SERVICES") == "1"


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers",
        "license_tier(tier): run a database test with this tier's license installed for the default "
        "organisation ('free' installs none); the default is enterprise",
    )


@pytest.fixture(autouse=True, scope="session")
def _trusted_license_key():
    """The test session's license signing key is the one this deployment trusts."""
    from django.conf import settings

    from tests.licenses.support import session_key

    settings.ELDRIC_LICENSE_PUBLIC_KEYS = [session_key().public]
    return session_key()


@pytest.fixture
def license_key(_trusted_license_key):
    """Signs licenses the deployment trusts: ``license_key.issue(tier=..., organisation=...)``."""
    return _trusted_license_key


@pytest.fixture(autouse=True)
def _installed_license(request, _trusted_license_key):
    """Database tests run with a real signed Enterprise license for the default organisation,
    so the many tests that add backends at runtime are not stopped by Free's limits. Mark a
    test ``@pytest.mark.license_tier("free")`` (or another tier) to run it under that tier."""
    marker = request.node.get_closest_marker("license_tier")
    tier = marker.args[0] if marker else "enterprise"
    db_marker = request.node.get_closest_marker("django_db")
    names = request.fixturenames
    if "transactional_db" in names or (db_marker and db_marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
    elif "db" in names or db_marker is not None:
        request.getfixturevalue("db")
    else:
        return
    if tier != "free":
        from orgs.services import license_install

        license_install(document=_trusted_license_key.issue(tier=tier))


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
def gateway_config():
    """The gateway's settings for the ``gateway`` fixture; override it to change them."""
    from gateway.config import GatewayConfig

    return GatewayConfig()


@pytest.fixture
def gateway(gateway_config):
    """A real gateway server in this process, built fresh for each test."""
    from tests.gateway_server import GatewayServer

    server = GatewayServer(gateway_config).start()
    yield server
    server.stop()


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


# --- No raw key in any log line of the whole run ------------------------------------------
# Every upstream key the tests use looks like a real one (sk-…, xai-…, gsk_…); masks contain
# "…" and redactions say "[redacted]", so neither matches.
RAW_KEY = re.compile(r"\b(?:sk|xai|gsk)[-_](?!…)[A-Za-z0-9][A-Za-z0-9_-]{7,}")


class _LogCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a broken log call is not this check's concern
            return
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]}"
        if RAW_KEY.search(text):
            self.leaks.append(f"{record.name}: {text[:300]}")


_collector = _LogCollector()


def pytest_sessionstart(session) -> None:
    logging.getLogger().addHandler(_collector)


def pytest_sessionfinish(session, exitstatus) -> None:
    if _collector.leaks:
        print("\nRaw upstream keys appeared in log records:", *_collector.leaks, sep="\n  ")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
