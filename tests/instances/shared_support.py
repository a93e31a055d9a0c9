"""What the multi-instance tests with Redis share: the module's Redis settings for instances."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import service_missing
from tests.e2e.conftest import REDIS_URL

COOLDOWN = 2.0


@pytest.fixture(scope="module")
def redis_env():
    """Redis for the module's instances, under its own key prefixes, so other tests' keys (and
    other helpers' runs on the same Redis) are left alone."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.ConnectionError:
        service_missing("Redis on 127.0.0.1:6379")
    run = uuid.uuid4().hex[:8]
    prefixes = (f"test:{run}:shared:", f"test:{run}:lim:")
    yield {
        "REDIS_URL": REDIS_URL,
        "ELDRIC_SHARED_STATE_PREFIX": prefixes[0],
        "ELDRIC_LIMITS_REDIS_PREFIX": prefixes[1],
        "ELDRIC_BREAKER_FAILURES": "2",
        "ELDRIC_BREAKER_COOLDOWN_SECONDS": str(COOLDOWN),
        "ELDRIC_MAX_ATTEMPTS": "1",
    }
    for prefix in prefixes:
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)
    client.close()
