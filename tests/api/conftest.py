import pytest
from rest_framework.test import APIClient

from tests.fakes.server import openai_models, reply_json

ADMIN_TOKEN = "eldadm_test-token-0123456789abcdef"
RAW_KEY = "sk-live-RAWSECRET-9f8e7d6c5b4a"


class Api:
    """An authenticated client for the management API."""

    def __init__(self, client: APIClient) -> None:
        self.client = client

    def _call(self, method: str, path: str, json=None, **extra):
        return getattr(self.client, method)(path, data=json, format="json", **extra)

    def get(self, path, **extra):
        return self._call("get", path, **extra)

    def post(self, path, json=None, **extra):
        return self._call("post", path, json, **extra)

    def patch(self, path, json=None, **extra):
        return self._call("patch", path, json, **extra)

    def delete(self, path, **extra):
        return self._call("delete", path, **extra)


@pytest.fixture
def admin_token(settings) -> str:
    settings.ELDRIC_ADMIN_TOKEN = ADMIN_TOKEN
    return ADMIN_TOKEN


@pytest.fixture
def api(transactional_db, admin_token) -> Api:
    """Transactional: as in production, model discovery runs right after each write commits."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token}")
    return Api(client)


@pytest.fixture
def upstream(fake_provider):
    """A healthy OpenAI-compatible provider listing two models."""
    fake = fake_provider("up")
    fake.on("GET", "/v1/models", openai_models("model-a", "model-b"))
    return fake


@pytest.fixture
def rejecting_upstream(fake_provider):
    fake = fake_provider("locked")
    fake.on(
        "GET",
        "/v1/models",
        reply_json({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, status=401),
    )
    return fake


def backend_body(fake, **overrides) -> dict:
    body = {"name": "up", "type": "openai_compatible", "url": fake.url + "/v1", "api_key": RAW_KEY}
    body.update(overrides)
    return body
