"""Live backend state in the management API and the admin: while a circuit is open,
nothing says "healthy, routable"."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from backends.models import Backend, DiscoveredModel
from tests.traffic.conftest import finished
from traffic.models import BackendLiveState
from traffic.selectors import backend_circuits
from traffic.services import backend_live_state_write

pytestmark = pytest.mark.django_db
TOKEN = "eldadm_live-state-token-0123456789"


@pytest.fixture
def api(settings):
    settings.ELDRIC_ADMIN_TOKEN = TOKEN
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return client


@pytest.fixture
def backends():
    made = []
    for priority, name in enumerate(("alpha", "beta")):
        backend = Backend.objects.create(name=name, url=f"http://127.0.0.1:9/{name}", priority=priority)
        Backend.objects.filter(pk=backend.pk).update(health_status="healthy")
        DiscoveredModel.objects.create(backend=backend, model_id="gpt-4o")
        made.append(backend)
    return made


def listed(api) -> dict[str, dict]:
    response = api.get("/api/v1/backends")
    assert response.status_code == 200
    return {b["name"]: b for b in response.json()["data"]}


def test_the_worst_circuit_across_instances_wins_and_stale_reports_fade(settings):
    now = timezone.now()
    backend_live_state_write(instance="one", states={"alpha": {"circuit": "closed"}}, now=now)
    backend_live_state_write(instance="two", states={"alpha": {"circuit": "open"}}, now=now)
    backend_live_state_write(instance="old", states={"beta": {"circuit": "open"}}, now=now - timedelta(seconds=31))

    assert backend_circuits(now=now) == {"alpha": ("open", None)}


def test_an_instance_that_stops_reporting_a_backend_loses_its_row():
    backend_live_state_write(instance="one", states={"alpha": {"circuit": "open"}, "beta": {"circuit": "open"}})
    backend_live_state_write(instance="one", states={"beta": {"circuit": "half_open"}})

    assert list(BackendLiveState.objects.values_list("backend", "circuit")) == [("beta", "half_open")]


def test_an_open_circuit_makes_a_healthy_backend_unroutable_in_the_api(api, backends, recorder):
    recorder.states.update({"alpha": {"circuit": "open", "rate_limited_until": None}, "beta": {"circuit": "closed"}})
    recorder.flush()

    data = listed(api)
    assert data["alpha"]["health_status"] == "healthy"
    assert (data["alpha"]["circuit"], data["alpha"]["routable"]) == ("open", False)
    assert (data["beta"]["circuit"], data["beta"]["routable"]) == ("closed", True)
    detail = api.get("/api/v1/backends/alpha").json()
    assert (detail["circuit"], detail["routable"]) == ("open", False)

    recorder.states.update({"beta": {"circuit": "closed", "rate_limited_until": time.time() + 60}})
    recorder.flush()
    beta = listed(api)["beta"]
    assert beta["routable"] is False and beta["rate_limited_until"] is not None

    models = {m["id"]: m for m in api.get("/api/v1/models").json()["data"]}
    assert models["gpt-4o"]["routable"] is False
    assert [b["routable"] for b in models["gpt-4o"]["backends"]] == [False, False]


def test_recent_traffic_shows_per_backend_over_5_and_60_minutes(api, backends, recorder):
    now = time.time()
    for _ in range(8):
        recorder.request_finished(finished(backend="alpha", latency=0.2, at=now))
    recorder.request_finished(finished(backend="alpha", status=500, latency=4.0, at=now))
    recorder.request_finished(finished(backend="beta", failed=(("alpha", "timeout", None),), at=now))
    recorder.request_finished(finished(backend="alpha", at=now - 30 * 60))  # only in the hour
    recorder.request_finished(finished(backend="alpha", at=now - 90 * 60))  # in neither
    recorder.flush()

    alpha = listed(api)["alpha"]["traffic"]
    assert {k: alpha["last_5m"][k] for k in ("requests", "errors", "failovers")} == {
        "requests": 9,
        "errors": 1,
        "failovers": 1,
    }
    assert alpha["last_60m"]["requests"] == 10
    assert 100 <= alpha["last_5m"]["p50_ms"] <= 250
    assert 2500 <= alpha["last_5m"]["p95_ms"] <= 5000
    beta = listed(api)["beta"]["traffic"]
    assert beta["last_5m"]["requests"] == 1 and beta["last_5m"]["failovers"] == 0
    assert api.get("/api/v1/backends/alpha").json()["traffic"]["last_60m"]["requests"] == 10


def test_a_backend_without_traffic_says_so(api, backends):
    alpha = listed(api)["alpha"]
    assert alpha["circuit"] == "closed" and alpha["routable"] is True and alpha["rate_limited_until"] is None
    assert alpha["traffic"]["last_5m"] == {"requests": 0, "errors": 0, "failovers": 0, "p50_ms": None, "p95_ms": None}


def test_the_admin_backend_list_shows_circuit_and_traffic(backends, recorder):
    recorder.states.update({"alpha": {"circuit": "open"}})
    for _ in range(3):
        recorder.request_finished(finished(backend="alpha"))
    recorder.flush()
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))

    page = client.get("/admin/backends/backend/").content.decode()

    assert '<td class="field-circuit">open</td>' in page
    assert '<td class="field-traffic_5m">3 req, 0 err, 0 failovers, p50' in page
