"""The admin shows what clients see: the combined status in colour next to the probe's
health, the circuit and the rate limit; the singleton rows cannot be added or deleted."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import User
from django.test import Client

from backends.models import Backend, GatewaySettings, WorkerIdentity
from backends.selectors import gateway_settings_get
from backends.services import worker_identity_ensure
from backends.status import STATUSES
from traffic.services import backend_live_state_write

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/backends/backend/"


@pytest.fixture
def admin_client():
    client = Client()
    client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
    return client


def backend(name: str, health: str = "healthy", **fields) -> Backend:
    made = Backend.objects.create(name=name, url=f"http://127.0.0.1:9/{name}", **fields)
    Backend.objects.filter(pk=made.pk).update(health_status=health, last_error="" if health == "healthy" else "boom")
    return made


def cell(page: str, field: str, row_name: str) -> str:
    """The HTML of one cell of the changelist row whose name link is ``row_name``."""
    row = next(r for r in page.split("<tr") if f">{row_name}</a>" in r)
    match = re.search(rf'<td class="field-{field}[^"]*">(.*?)</td>', row, re.S)
    assert match, f"no {field} cell in row {row_name}"
    return match.group(1)


def test_a_probe_healthy_backend_with_an_open_circuit_shows_red(admin_client):
    backend("alpha")
    backend("beta")
    backend("gamma", health="auth_failed")
    backend("delta", enabled=False)
    backend("epsilon")
    backend_live_state_write(
        instance="one",
        states={"alpha": {"circuit": "open"}, "epsilon": {"circuit": "closed", "rate_limited_until": time.time() + 90}},
    )

    page = admin_client.get(CHANGELIST).content.decode()

    alpha = cell(page, "status", "alpha")
    assert "circuit open" in alpha and STATUSES["circuit_open"][1] in alpha
    assert "Healthy" in cell(page, "health_status", "alpha")  # the probe's word, next to it
    assert cell(page, "circuit", "alpha") == "open"
    assert "healthy" in cell(page, "status", "beta") and STATUSES["healthy"][1] in cell(page, "status", "beta")
    assert "auth failed" in cell(page, "status", "gamma")
    assert "disabled" in cell(page, "status", "delta")
    epsilon = cell(page, "status", "epsilon")
    assert "rate-limited" in epsilon and STATUSES["rate_limited"][1] in epsilon
    assert "until" in cell(page, "rate_limit", "epsilon")
    assert cell(page, "rate_limit", "beta") == "-"


def test_the_singleton_rows_offer_neither_add_nor_delete(admin_client):
    row = gateway_settings_get()
    worker_identity_ensure(instance="eu-1")
    identity = WorkerIdentity.objects.get(instance="eu-1")

    for changelist, pk in (("gatewaysettings", row.pk), ("workeridentity", identity.pk)):
        base = f"/admin/backends/{changelist}/"
        listing = admin_client.get(base).content.decode()
        assert f'href="{base}add/"' not in listing
        assert 'value="delete_selected"' not in listing
        change = admin_client.get(f"{base}{pk}/change/").content.decode()
        assert f"{base}{pk}/delete/" not in change
        assert admin_client.get(f"{base}add/").status_code == 403
        assert admin_client.post(f"{base}{pk}/delete/", {"post": "yes"}).status_code == 403

    assert GatewaySettings.objects.count() == 1
    assert WorkerIdentity.objects.filter(instance="eu-1").exists()
