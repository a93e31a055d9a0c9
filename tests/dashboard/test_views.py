"""The dashboard page and its JSON endpoint: staff only, gated below Professional, and no
raw upstream key ever in what the page receives."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from backends.models import Backend
from backends.services import worker_heartbeat, worker_identity_ensure
from tests.dashboard.conftest import RAW_KEY
from traffic.models import TrafficMinute
from traffic.services import backend_live_state_write

pytestmark = pytest.mark.django_db
STATE = "/dashboard/api/state"


def test_the_page_is_for_staff_only():
    anonymous = Client().get("/dashboard/")
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    plain = Client()
    plain.force_login(User.objects.create_user("bob", password="pw-bob-123"))
    assert "/admin/login/" in plain.get("/dashboard/")["Location"]


def test_the_page_renders_its_panels_and_assets(staff_client, two_backends):
    page = staff_client.get("/dashboard/")

    assert page.status_code == 200
    html = page.content.decode()
    for panel in ("eld-backends-panel", "eld-models-panel", "eld-traffic-panel", "eld-instances-panel"):
        assert f'id="{panel}"' in html
    assert html.index("eld-backends-panel") < html.index("eld-models-panel") < html.index("eld-traffic-panel")
    assert "/static/dashboard/vendor/uplot/uPlot.iife.min.js" in html
    assert 'data-ws="/dashboard/ws/"' in html
    assert RAW_KEY not in html


@pytest.mark.parametrize("who", ["anonymous", "not staff"])
def test_the_json_endpoint_refuses_without_a_staff_session(who):
    client = Client()
    if who == "not staff":
        client.force_login(User.objects.create_user("bob", password="pw-bob-123"))

    response = client.get(STATE)

    assert response.status_code == 403  # JSON, never a redirect to a login page
    assert response.json()["error"]["code"] == "staff_login_required"


def test_the_json_endpoint_reports_backends_models_traffic_and_instances(staff_client, two_backends):
    now = timezone.now()
    backend_live_state_write(instance="one", states={"alpha": {"circuit": "open"}})
    Backend.objects.filter(name="beta").update(health_status="unhealthy", last_error="connection refused")
    bucket = now.replace(second=0, microsecond=0)
    TrafficMinute.objects.create(bucket=bucket, backend="alpha", model="gpt-4o", requests=10, errors=2, failovers=1)
    worker_identity_ensure(instance="eu-1")
    worker_heartbeat(instance="eu-1")

    response = staff_client.get(STATE)

    assert response.status_code == 200
    body = response.content.decode()
    assert RAW_KEY not in body
    state = response.json()
    backends = {b["name"]: b for b in state["backends"]}
    assert backends["alpha"]["status"] == "circuit_open" and backends["alpha"]["health_status"] == "healthy"
    assert backends["alpha"]["api_key_hint"] == "sk-…0000"
    assert backends["alpha"]["per_minute"] == {"requests": 2.0, "errors": 0.4, "failovers": 0.2}
    assert backends["alpha"]["model_count"] == 1 and backends["beta"]["model_count"] == 2
    assert backends["beta"]["status"] == "unhealthy" and backends["beta"]["last_error"] == "connection refused"

    models = {m["id"]: m for m in state["models"]}
    assert [b["name"] for b in models["gpt-4o"]["backends"]] == ["alpha", "beta"]
    assert models["gpt-4o"]["routable"] is False
    assert "circuit open" in models["gpt-4o"]["why_not"] and "connection refused" in models["gpt-4o"]["why_not"]

    traffic = state["traffic"]
    assert len(traffic["t"]) == 60 and traffic["t"][-1] == int(bucket.timestamp())
    assert traffic["requests"][-1] == 10 and traffic["error_rate"][-1] == 0.2
    assert sum(traffic["requests"]) == 10

    instances = {i["instance"]: i for i in state["instances"]}
    assert instances["eu-1"]["worker_id"].startswith("cld-")
    assert instances["eu-1"]["live"] is True and instances["eu-1"]["heartbeat_age_seconds"] < 60


def test_a_rate_limited_backend_says_until_when(staff_client, two_backends):
    held = {"circuit": "closed", "rate_limited_until": time.time() + 60}
    backend_live_state_write(instance="one", states={"beta": held})

    beta = {b["name"]: b for b in staff_client.get(STATE).json()["backends"]}["beta"]

    assert beta["status"] == "rate_limited" and beta["rate_limited_until"] is not None


@pytest.mark.license_tier("standard")
def test_below_professional_the_page_names_the_tier_and_the_admin_stays(staff_client, two_backends):
    page = staff_client.get("/dashboard/")

    assert page.status_code == 403
    html = page.content.decode()
    assert "Professional" in html and "license_limit" in html
    assert 'id="eldric-dashboard"' not in html
    api = staff_client.get(STATE)
    assert api.status_code == 403 and api.json()["error"]["code"] == "license_limit"
    assert RAW_KEY not in api.content.decode()
    staff_client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    assert staff_client.get("/admin/backends/backend/").status_code == 200
