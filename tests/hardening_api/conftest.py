import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests.api.conftest import ADMIN_TOKEN, Api


@pytest.fixture
def api(transactional_db, settings) -> Api:
    """The management API with the admin token; discovery runs after each write commits."""
    settings.ELDRIC_ADMIN_TOKEN = ADMIN_TOKEN
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ADMIN_TOKEN}")
    return Api(client)


@pytest.fixture
def raw_post(api):
    """POST raw bytes as application/json, the way a hostile client would."""

    def post(path: str, body: bytes):
        return api.client.post(path, data=body, content_type="application/json")

    return post


@pytest.fixture
def admin_client(transactional_db) -> Client:
    user = User.objects.create_superuser("root", password="pw-root-123")
    client = Client()
    client.force_login(user)
    return client


def assert_openai_error(response, status: int, *, param=None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    return error
