"""Who may use /api/v1 and /api/schema/: the admin token or a staff session (CSRF on writes)."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

from backends.models import Backend
from tests.api.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/v1/backends"),
    ("post", "/api/v1/backends"),
    ("get", "/api/v1/backends/x"),
    ("patch", "/api/v1/backends/x"),
    ("delete", "/api/v1/backends/x"),
    ("post", "/api/v1/backends/x/test"),
    ("post", "/api/v1/backends/test"),
    ("get", "/api/v1/models"),
    ("get", "/api/v1/audit"),
    ("get", "/api/schema/"),
]


def call(client, method, path, **extra):
    return getattr(client, method)(path, data={} if method != "get" else None, content_type="application/json", **extra)


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_it_answers_401_without_a_token(admin_token, method, path):
    response = call(Client(), method, path)

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_it_answers_401_with_a_wrong_token(admin_token, method, path):
    response = call(Client(), method, path, HTTP_AUTHORIZATION="Bearer " + ADMIN_TOKEN + "x")

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid admin token."


@pytest.mark.parametrize(
    "header", ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer   ", ADMIN_TOKEN, "Token " + ADMIN_TOKEN]
)
def test_it_answers_401_to_other_schemes(admin_token, header):
    response = Client().get("/api/v1/backends", HTTP_AUTHORIZATION=header)

    assert response.status_code == 401


def test_the_token_opens_every_endpoint(admin_token):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {ADMIN_TOKEN}")

    assert client.get("/api/v1/backends").status_code == 200
    assert client.get("/api/v1/models").status_code == 200
    assert client.get("/api/v1/audit").status_code == 200
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/backends/{name}/test" in schema.json()["paths"]


def test_the_scheme_is_case_insensitive(admin_token):
    assert Client().get("/api/v1/backends", HTTP_AUTHORIZATION=f"bearer {ADMIN_TOKEN}").status_code == 200


def test_the_generated_token_is_checked_against_its_stored_hash(settings):
    from backends.models import GatewaySettings
    from backends.services import admin_token_ensure

    settings.ELDRIC_ADMIN_TOKEN = ""
    token = admin_token_ensure()

    assert token.startswith("eldadm_")
    assert token not in GatewaySettings.objects.get().admin_token_hash
    assert Client().get("/api/v1/backends", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert Client().get("/api/v1/backends", HTTP_AUTHORIZATION=f"Bearer {token[:-1]}").status_code == 401


def test_no_token_at_all_lets_nobody_in(settings):
    settings.ELDRIC_ADMIN_TOKEN = ""

    assert Client().get("/api/v1/backends", HTTP_AUTHORIZATION="Bearer ").status_code == 401
    assert Client().get("/api/v1/backends", HTTP_AUTHORIZATION="Bearer anything").status_code == 401


@pytest.fixture
def staff():
    return User.objects.create_user("alice", password="pw-alice-123", is_staff=True)


@pytest.fixture
def staff_client(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    return client


def csrf_token(client: Client) -> str:
    # Any page rendering a form sets the cookie; the admin index has the logout form.
    assert client.get("/admin/").status_code == 200
    return client.cookies["csrftoken"].value


def test_a_staff_session_may_read(staff_client):
    assert staff_client.get("/api/v1/backends").status_code == 200
    assert staff_client.get("/api/schema/").status_code == 200


def test_a_staff_session_write_needs_csrf(staff_client):
    body = {"name": "s1", "type": "openai_compatible", "url": "http://127.0.0.1:9/v1", "enabled": False}

    refused = staff_client.post("/api/v1/backends", body, content_type="application/json")

    assert refused.status_code == 403
    assert "CSRF" in refused.json()["error"]["message"]
    assert not Backend.objects.exists()

    accepted = staff_client.post(
        "/api/v1/backends", body, content_type="application/json", HTTP_X_CSRFTOKEN=csrf_token(staff_client)
    )

    assert accepted.status_code == 201
    from backends.models import AuditLog

    assert AuditLog.objects.get(backend_name="s1").actor == "alice"


def test_a_session_of_a_non_staff_user_is_401():
    user = User.objects.create_user("bob", password="pw-bob-123")
    client = Client()
    client.force_login(user)

    assert client.get("/api/v1/backends").status_code == 401


def test_token_requests_need_no_csrf(admin_token):
    client = Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {ADMIN_TOKEN}")
    body = {"name": "t1", "type": "openai_compatible", "url": "http://127.0.0.1:9/v1", "enabled": False}

    assert client.post("/api/v1/backends", body, content_type="application/json").status_code == 201
