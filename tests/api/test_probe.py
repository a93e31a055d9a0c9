"""POST /api/v1/backends/{name}/test and POST /api/v1/backends/test: live checks."""

import pytest

from backends.models import Backend
from tests.api.conftest import RAW_KEY, backend_body
from tests.fakes.server import hang, reply_json

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS = {
    "reachable",
    "http_status",
    "auth_valid",
    "model_count",
    "models",
    "model_capabilities",
    "latency_ms",
    "status",
    "error",
}


def test_it_tests_a_saved_backend(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream))
    before = len(upstream.requests_to("/v1/models"))

    response = api.post("/api/v1/backends/up/test")

    assert response.status_code == 200
    result = response.json()
    assert set(result) == FIELDS
    assert result["reachable"] is True
    assert result["http_status"] == 200
    assert result["auth_valid"] is True
    assert result["model_count"] == 2
    assert result["models"] == ["model-a", "model-b"]
    assert result["latency_ms"] >= 0
    assert result["status"] == "healthy"
    assert result["error"] == ""
    assert len(upstream.requests_to("/v1/models")) == before + 1


def test_it_reports_a_rejected_key_and_records_it(api, rejecting_upstream):
    api.post("/api/v1/backends", backend_body(rejecting_upstream, name="locked", enabled=False))

    result = api.post("/api/v1/backends/locked/test").json()

    assert result["reachable"] is True
    assert result["http_status"] == 401
    assert result["auth_valid"] is False
    assert result["status"] == "auth_failed"
    assert "Incorrect API key" in result["error"]
    assert Backend.objects.get().health_status == "auth_failed"


def test_it_reports_an_unreachable_backend(api):
    api.post("/api/v1/backends", {"name": "gone", "type": "openai_compatible", "url": "http://127.0.0.1:9/v1"})

    result = api.post("/api/v1/backends/gone/test").json()

    assert result["reachable"] is False
    assert result["http_status"] is None
    assert result["auth_valid"] is None
    assert result["status"] == "unhealthy"
    assert result["error"].startswith("cannot connect")


def test_a_server_error_says_nothing_about_the_key(api, fake_provider):
    broken = fake_provider("broken").on("GET", "/v1/models", reply_json({"error": {"message": "boom"}}, status=503))
    api.post("/api/v1/backends", backend_body(broken, name="broken", enabled=False))

    result = api.post("/api/v1/backends/broken/test").json()

    assert result["http_status"] == 503
    assert result["auth_valid"] is None
    assert result["status"] == "unhealthy"


def test_a_slow_backend_times_out(api, fake_provider, settings):
    settings.ELDRIC_HEALTH_TIMEOUT = 0.3
    slow = fake_provider("slow").on("GET", "/v1/models", hang(5))
    api.post("/api/v1/backends", backend_body(slow, name="slow", enabled=False))

    result = api.post("/api/v1/backends/slow/test").json()

    assert result["reachable"] is False
    assert "timed out" in result["error"]


def test_testing_an_unknown_backend_is_404(api):
    assert api.post("/api/v1/backends/nope/test").status_code == 404


def test_it_tests_an_unsaved_config_without_saving_it(api, upstream):
    body = backend_body(upstream, headers={"X-Org": "o1"})
    del body["name"]

    response = api.post("/api/v1/backends/test", body)

    assert response.status_code == 200
    result = response.json()
    assert result["status"] == "healthy"
    assert result["auth_valid"] is True
    assert result["models"] == ["model-a", "model-b"]
    sent = upstream.requests_to("/v1/models")[-1].headers
    assert sent["Authorization"] == f"Bearer {RAW_KEY}"
    assert sent["x-org"] == "o1"
    assert not Backend.objects.exists()


def test_an_unsaved_config_with_a_bad_key(api, rejecting_upstream):
    body = backend_body(rejecting_upstream)
    del body["name"]

    result = api.post("/api/v1/backends/test", body).json()

    assert result["status"] == "auth_failed"
    assert result["auth_valid"] is False
    assert RAW_KEY not in result["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "openai_compatible"}, "url"),
        ({"url": "http://h.example/v1"}, "type"),
        ({"type": "nope", "url": "http://h.example/v1"}, "type"),
        ({"type": "openai_compatible", "url": "file:///etc/passwd"}, "url"),
        ({"type": "openai_compatible", "url": "http://h.example/v1", "name": "x"}, "name"),
        ({"type": "openai_compatible", "url": "http://h.example/v1", "api_key": ["k"]}, "api_key"),
    ],
)
def test_an_unsaved_config_is_validated(api, body, field):
    response = api.post("/api/v1/backends/test", body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == field
