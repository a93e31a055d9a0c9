from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from backends.models import Backend, DiscoveredModel
from dashboard.publisher import LEASE_KEY
from tests.server.conftest import data_dir, migrated_template  # noqa: F401 - fixtures shared with tests/server

RAW_KEY = "sk-dash-RAWSECRET-99990000"


@pytest.fixture(autouse=True)
def _no_publisher_lease():
    # Each test builds its own publisher; a lease left by an earlier test's would silence it.
    cache.delete(LEASE_KEY)
    yield
    cache.delete(LEASE_KEY)


@pytest.fixture
def staff_user():
    return User.objects.create_user("ops", password="pw-ops-123", is_staff=True)


@pytest.fixture
def staff_client(staff_user):
    client = Client()
    client.force_login(staff_user)
    return client


@pytest.fixture
def two_backends():
    made = []
    for priority, name in enumerate(("alpha", "beta")):
        backend = Backend(name=name, url=f"http://127.0.0.1:9/{name}", priority=priority)
        backend.set_api_key(RAW_KEY)
        backend.save()
        Backend.objects.filter(pk=backend.pk).update(health_status="healthy", latency_ms=12.5)
        DiscoveredModel.objects.create(backend=backend, model_id="gpt-4o")
        made.append(backend)
    DiscoveredModel.objects.create(backend=made[1], model_id="only-on-beta")
    return made
