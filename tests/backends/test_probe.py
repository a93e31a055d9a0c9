"""The health probe over a backend's model list (sync; runs in Celery and at start-up)."""

from backends.probe import probe
from tests.conftest import route_for
from tests.fakes.server import openai_models, reply_bytes, reply_json


def test_a_listing_is_healthy_with_its_models_and_latency(fake_provider):
    fake = fake_provider("openai").on("GET", "/v1/models", openai_models("gpt-4o", "gpt-4o-mini"))

    result = probe(route_for(fake), timeout=5)

    assert result.status == "healthy"
    assert [m.id for m in result.models] == ["gpt-4o", "gpt-4o-mini"]
    assert result.latency_ms is not None
    assert fake.received[0].headers["Authorization"] == "Bearer sk-test-key-0001"


def test_a_rejected_key_is_auth_failed_and_the_key_is_redacted_from_the_error(fake_provider):
    fake = fake_provider("openai").on(
        "GET",
        "/v1/models",
        reply_json({"error": {"message": "Incorrect API key provided: sk-test-key-0001"}}, status=401),
    )

    result = probe(route_for(fake), timeout=5)

    assert result.status == "auth_failed"
    assert "sk-test-key-0001" not in result.error
    assert "[redacted]" in result.error


def test_a_redirect_is_not_followed_and_names_the_target(fake_provider):
    fake = fake_provider("openai").on(
        "GET", "/v1/models", reply_bytes(b"", status=308, headers={"Location": "https://api.example/v1/models"})
    )

    result = probe(route_for(fake), timeout=5)

    assert result.status == "unhealthy"
    assert "redirected to https://api.example/v1/models" in result.error


def test_an_unreachable_backend_is_unhealthy(fake_provider):
    fake = fake_provider("gone")
    fake.stop()

    result = probe(route_for(fake), timeout=2)

    assert result.status == "unhealthy"
    assert result.error.startswith("cannot connect")
    assert not result.reachable
