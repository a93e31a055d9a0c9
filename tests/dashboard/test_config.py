"""The Configuration panel's side of the server: the page hands the browser a CSRF token and
no key; every write it makes goes to the management API with the session and that token,
and is refused without it; the instances' default backend and health-check interval are
editable there; below Standard a runtime add is 403 ``license_limit`` with the API's message."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from backends.models import Backend, BackendSource, WorkerIdentity
from backends.services import worker_identity_ensure
from tests.dashboard.conftest import RAW_KEY
from tests.fakes.server import openai_models

pytestmark = pytest.mark.django_db
NEW_KEY = "sk-rotated-NEWSECRET-12345678"


@pytest.fixture
def page_client(staff_user):
    """A browser's view: CSRF enforced, the token read from the dashboard page itself."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    page = client.get("/dashboard/")
    assert page.status_code == 200
    client.token = re.search(r'data-csrf="([^"]+)"', page.content.decode()).group(1)
    client.html = page.content.decode()
    return client


def write(client, method: str, path: str, body=None, *, token: bool = True):
    extra = {"HTTP_X_CSRFTOKEN": client.token} if token else {}
    call = getattr(client, method.lower())
    if body is None:
        return call(path, **extra)
    return call(path, body, content_type="application/json", **extra)


def test_the_page_carries_the_config_panel_and_a_csrf_token_but_no_key(page_client, two_backends):
    html = page_client.html
    assert 'id="eld-config-panel"' in html and 'id="eld-add-form"' in html
    assert 'id="eld-decisions-panel"' in html
    assert "csrftoken" in page_client.cookies
    assert RAW_KEY not in html
    # The presets fill the form in the browser.
    assert '"openai": {"url": "https://api.openai.com/v1"' in html


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/backends", {"name": "gamma", "type": "openai_compatible", "url": "http://127.0.0.1:9/v1"}),
        ("PATCH", "/api/v1/backends/alpha", {"enabled": False}),
        ("PATCH", "/api/v1/backends/alpha", {"api_key": NEW_KEY}),
        ("DELETE", "/api/v1/backends/beta", None),
        ("PATCH", "/api/v1/instances/default", {"health_interval_ms": 5000}),
        ("POST", "/api/v1/backends/test", {"type": "openai_compatible", "url": "http://127.0.0.1:9/v1"}),
    ],
)
def test_a_write_without_the_csrf_token_is_refused(page_client, two_backends, method, path, body):
    worker_identity_ensure(instance="default")
    before = list(Backend.objects.order_by("name").values_list("name", "enabled", "api_key_hint"))

    refused = write(page_client, method, path, body, token=False)

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    assert list(Backend.objects.order_by("name").values_list("name", "enabled", "api_key_hint")) == before
    assert WorkerIdentity.objects.get(instance="default").health_interval_ms != 5000


def test_enable_disable_rotate_and_delete_with_the_token(page_client, two_backends):
    assert write(page_client, "PATCH", "/api/v1/backends/alpha", {"enabled": False}).status_code == 200
    assert Backend.objects.get(name="alpha").enabled is False
    assert write(page_client, "PATCH", "/api/v1/backends/alpha", {"enabled": True}).status_code == 200

    rotated = write(page_client, "PATCH", "/api/v1/backends/alpha", {"api_key": NEW_KEY})

    assert rotated.status_code == 200
    assert NEW_KEY not in rotated.content.decode() and rotated.json()["api_key"] == "sk-…5678"
    assert Backend.objects.get(name="alpha").api_key == NEW_KEY
    state = page_client.get("/dashboard/api/state")
    assert NEW_KEY not in state.content.decode()
    assert {b["name"]: b["api_key_hint"] for b in state.json()["backends"]}["alpha"] == "sk-…5678"

    assert write(page_client, "DELETE", "/api/v1/backends/beta").status_code == 204
    assert not Backend.objects.filter(name="beta").exists()


def test_a_static_backend_is_read_only_and_says_whose(page_client, two_backends):
    Backend.objects.filter(name="alpha").update(source=BackendSource.STATIC, instances=["eu-1"])

    alpha = {b["name"]: b for b in page_client.get("/dashboard/api/state").json()["backends"]}["alpha"]
    refused = write(page_client, "DELETE", "/api/v1/backends/alpha")

    assert alpha["source"] == "static" and alpha["instances"] == ["eu-1"]  # the page's "declared by eu-1"
    assert refused.status_code == 409 and "config file" in refused.json()["error"]["message"]
    assert write(page_client, "PATCH", "/api/v1/backends/alpha", {"enabled": False}).status_code == 200


def test_test_before_saving_probes_without_saving_or_echoing_the_key(page_client, fake_provider):
    upstream = fake_provider("candidate").on("GET", "/v1/models", openai_models("gpt-4o", "gpt-4o-mini"))

    answer = write(
        page_client,
        "POST",
        "/api/v1/backends/test",
        {"type": "openai_compatible", "url": upstream.url + "/v1", "api_key": RAW_KEY},
    )

    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "healthy" and body["models"] == ["gpt-4o", "gpt-4o-mini"]
    assert RAW_KEY not in answer.content.decode()
    assert upstream.requests_to("/v1/models")[0].headers["Authorization"] == f"Bearer {RAW_KEY}"
    assert not Backend.objects.exists()


def test_test_before_saving_obeys_the_url_policy(page_client, settings):
    settings.ELDRIC_BACKEND_URL_DENY = ["10.0.0.0/8"]

    answer = write(
        page_client, "POST", "/api/v1/backends/test", {"type": "openai_compatible", "url": "http://10.1.2.3/v1"}
    )

    assert answer.status_code == 400 and answer.json()["error"]["param"] == "url"


def test_the_instances_default_backend_and_interval_are_editable(page_client, two_backends):
    worker_identity_ensure(instance="eu-1")

    saved = write(
        page_client, "PATCH", "/api/v1/instances/eu-1", {"default_backend": "beta", "health_interval_ms": 5000}
    )

    assert saved.status_code == 200
    row = WorkerIdentity.objects.get(instance="eu-1")
    assert (row.default_backend, row.health_interval_ms) == ("beta", 5000)
    instance = {i["instance"]: i for i in page_client.get("/dashboard/api/state").json()["instances"]}["eu-1"]
    assert (instance["default_backend"], instance["health_interval_ms"]) == ("beta", 5000)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"default_backend": "nope"}, "default_backend"),
        ({"health_interval_ms": 50}, "health_interval_ms"),
        ({"health_interval_ms": "5000"}, "health_interval_ms"),
        ({"controller_url": "http://x"}, "controller_url"),
    ],
)
def test_bad_instance_settings_are_400_in_openais_shape(page_client, two_backends, body, param):
    worker_identity_ensure(instance="eu-1")

    refused = write(page_client, "PATCH", "/api/v1/instances/eu-1", body)

    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == param and refused.json()["error"]["type"] == "invalid_request_error"
    assert write(page_client, "PATCH", "/api/v1/instances/nobody", {"health_interval_ms": 5000}).status_code == 404


@pytest.mark.license_tier("free")
def test_below_standard_a_runtime_add_is_a_license_limit_with_the_apis_message(staff_user):
    # The dashboard itself needs Professional; this is the answer its form would show.
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    client.get("/admin/")
    client.token = client.cookies["csrftoken"].value
    body = {"name": "gamma", "type": "openai_compatible", "url": "http://127.0.0.1:9/v1"}

    refused = write(client, "POST", "/api/v1/backends", body)

    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "license_limit" and error["message"]
    assert not Backend.objects.filter(name="gamma").exists()
