"""``GET /v1/models/{id}``: a listed model answers from the catalogue with its discovered
``created``; a model no backend lists is asked of the default backend, as chat would route it,
and answered in OpenAI's model shape. Through the official openai SDK's ``models.retrieve``.
"""

from __future__ import annotations

import time

import openai
import pytest
from aiohttp import web

from backends.models import Backend, DiscoveredModel
from backends.providers.base import ModelInfo
from backends.selectors import routing_snapshot_build
from backends.services import backend_models_sync
from tests.conftest import route_for
from tests.fakes.server import reply_json

LISTED = "gpt-4o-mini"
FINE_TUNED = "ft:gpt-4o-mini:acme::9abc"
KEY = "sk-test-key-0001"


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0)


@pytest.fixture
def openai_default(gateway, fake_provider):
    """An OpenAI-compatible default backend that lists one model and knows one more."""
    fake = fake_provider("openai")
    fake.on(
        "GET",
        f"/v1/models/{FINE_TUNED}",
        reply_json({"id": FINE_TUNED, "object": "model", "created": 1715367049, "owned_by": "acme"}),
    )
    gateway.route((route_for(fake), [LISTED]))
    return fake


def test_a_listed_model_has_its_discovered_created_time(openai_default, client):
    model = client.models.retrieve(LISTED)

    assert (model.id, model.object, model.owned_by) == (LISTED, "model", "openai")
    assert model.created == 1700000000  # what discovery recorded (tests/gateway_server.py)
    assert openai_default.received == []  # answered from the snapshot


def test_an_unlisted_model_is_asked_of_the_default_backend(openai_default, client):
    model = client.models.retrieve(FINE_TUNED)

    assert (model.id, model.object, model.owned_by) == (FINE_TUNED, "model", "openai")
    assert model.created == 1715367049
    sent = openai_default.requests_to(f"/v1/models/{FINE_TUNED}")[0]
    assert sent.headers["Authorization"] == f"Bearer {KEY}"


def test_a_model_the_default_backend_does_not_know_is_404(openai_default, client):
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-nonexistent")

    assert raised.value.body["code"] == "model_not_found"
    assert openai_default.requests_to("/v1/models/gpt-nonexistent")  # it was asked


def test_a_model_id_with_a_slash_reaches_the_upstream_as_one_path(gateway, fake_provider, client):
    fake = fake_provider("vllm")
    fake.on(
        "GET", "/v1/models/meta-llama/Llama-3.1-8B", reply_json({"id": "meta-llama/Llama-3.1-8B", "object": "model"})
    )
    gateway.route((route_for(fake), ["other"]))

    model = client.models.retrieve("meta-llama/Llama-3.1-8B")

    assert model.id == "meta-llama/Llama-3.1-8B"
    assert model.created > 1_700_000_000  # no upstream time: when the gateway first heard of it


def test_dot_segments_never_reach_the_upstream(openai_default, gateway):
    with gateway.client() as http:
        answer = http.get("/v1/models/x/%2E%2E/%2E%2E/admin")

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "model_not_found"
    assert openai_default.received == []


def test_an_anthropic_default_backend_answers_with_its_created_at(gateway, fake_provider, client):
    fake = fake_provider("claude")
    fake.on(
        "GET",
        "/v1/models/claude-opus-4-1",
        reply_json(
            {
                "type": "model",
                "id": "claude-opus-4-1-20250805",
                "display_name": "Claude Opus 4.1",
                "created_at": "2025-08-05T00:00:00Z",
            }
        ),
    )
    gateway.route((route_for(fake, kind="anthropic"), ["claude-sonnet-4-0"]))

    model = client.models.retrieve("claude-opus-4-1")

    assert (model.id, model.owned_by, model.created) == ("claude-opus-4-1", "claude", 1754352000)
    sent = fake.requests_to("/v1/models/claude-opus-4-1")[0]
    assert sent.headers["x-api-key"] == KEY


def test_an_ollama_default_backend_is_asked_with_api_show(gateway, fake_provider, client):
    fake = fake_provider("ollama")

    async def show(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("model") != "qwen3:8b":
            return web.json_response({"error": f"model '{body.get('model')}' not found"}, status=404)
        return web.json_response({"modified_at": "2025-05-04T17:37:44.706015396-07:00", "details": {}})

    fake.on("POST", "/api/show", show)
    gateway.route((route_for(fake, kind="ollama", key="", path=""), ["llama3"]))

    assert client.models.retrieve("qwen3:8b").created == 1746405464
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("mistral:7b")


def test_an_upstream_error_keeps_its_status_and_never_shows_the_key(gateway, fake_provider, client):
    fake = fake_provider("openai")
    fake.on(
        "GET",
        "/v1/models/some-model",
        reply_json({"error": {"message": f"key {KEY} is not allowed", "type": "permission_error"}}, status=403),
    )
    gateway.route((route_for(fake), ["other"]))

    with pytest.raises(openai.PermissionDeniedError) as raised:
        client.models.retrieve("some-model")

    assert KEY not in str(raised.value.body)


def test_without_a_default_backend_an_unlisted_model_is_404(gateway, fake_provider, client):
    gateway.gateway.snapshots.install(routing_snapshot_empty())

    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(FINE_TUNED)


def routing_snapshot_empty():
    from backends.snapshot import snapshot_assemble

    return snapshot_assemble(version=2, worker_id="cld-0000test", routes=[], models={}, default_backend="")


@pytest.mark.django_db
def test_discovery_without_an_upstream_created_records_when_it_was_found():
    backend = Backend.objects.create(name="cohere", kind="cohere", url="https://api.cohere.com")
    before = int(time.time())

    backend_models_sync(backend=backend, models=[ModelInfo("command-a-03-2025"), ModelInfo("dated", created=1)])

    created = dict(DiscoveredModel.objects.values_list("model_id", "created"))
    assert created["dated"] == 1
    assert created["command-a-03-2025"] >= before
    snapshot = routing_snapshot_build()
    assert snapshot.model_created["command-a-03-2025"] >= before


@pytest.mark.django_db
def test_a_model_discovered_before_without_created_is_listed_with_its_discovery_time():
    backend = Backend.objects.create(name="cohere", kind="cohere", url="https://api.cohere.com")
    row = DiscoveredModel.objects.create(backend=backend, model_id="command-r", created=None)

    snapshot = routing_snapshot_build()

    assert snapshot.model_created["command-r"] == int(row.discovered_at.timestamp())
