"""GET /api/v1/models (the catalogue) and GET /api/v1/audit (who changed what)."""

import pytest

from backends.models import AuditLog, Backend
from backends.services import backends_static_apply
from backends.specs import BackendSpec
from tests.api.conftest import RAW_KEY, backend_body
from tests.fakes import cohere as fake_cohere
from tests.fakes.server import openai_models

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_catalogue_lists_every_backend_serving_each_model(api, upstream, fake_provider):
    second = fake_provider("second").on("GET", "/v1/models", openai_models("model-b", "model-z"))
    api.post("/api/v1/backends", backend_body(upstream, priority=5))
    api.post("/api/v1/backends", backend_body(second, name="second", priority=1))
    api.patch("/api/v1/backends/second", {"enabled": False})

    response = api.get("/api/v1/models")

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    by_id = {m["id"]: m for m in body["data"]}
    assert list(by_id) == ["model-a", "model-b", "model-z"]
    assert by_id["model-b"]["routable"] is True
    assert [(b["name"], b["priority"], b["routable"]) for b in by_id["model-b"]["backends"]] == [
        ("second", 1, False),
        ("up", 5, True),
    ]
    assert by_id["model-z"]["routable"] is False
    # An OpenAI-style list says nothing about what "model-a" is for: unknown, listed as chat.
    assert by_id["model-a"]["capabilities"] == ["chat"]
    assert by_id["model-a"]["backends"][0] == {
        "name": "up",
        "priority": 5,
        "enabled": True,
        "health_status": "healthy",
        "capability": "unknown",
        "routable": True,
    }


def test_a_backend_and_its_live_check_say_what_each_model_is_for(api, fake_provider):
    cohere = fake_provider("cohere").on("GET", "/v1/models", fake_cohere.models())
    api.post("/api/v1/backends", backend_body(cohere, name="cohere", type="cohere"))
    said = {
        "command-a-03-2025": "chat",
        "command-r": "chat",
        "command-r7b-12-2024": "chat",
        "embed-v4.0": "embedding",
        "rerank-v3.5": "rerank",
    }

    assert api.get("/api/v1/backends/cohere").json()["model_capabilities"] == said
    assert api.post("/api/v1/backends/cohere/test").json()["model_capabilities"] == said
    catalogue = {m["id"]: m for m in api.get("/api/v1/models").json()["data"]}
    assert catalogue["rerank-v3.5"]["capabilities"] == ["rerank"]
    assert catalogue["embed-v4.0"]["backends"][0]["capability"] == "embedding"


def test_the_catalogue_is_empty_without_backends(api):
    assert api.get("/api/v1/models").json() == {"object": "list", "data": []}


def test_every_api_change_is_audited_with_the_key_masked(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream))
    api.patch("/api/v1/backends/up", {"priority": 4, "api_key": "sk-other-key-77776666"})
    api.patch("/api/v1/backends/up", {"enabled": False})
    api.patch("/api/v1/backends/up", {"enabled": True})
    api.delete("/api/v1/backends/up")

    response = api.get("/api/v1/audit")

    assert response.status_code == 200
    entries = response.json()["data"]
    assert [e["action"] for e in entries] == ["delete", "enable", "disable", "update", "create"]
    assert {e["actor"] for e in entries} == {"admin-token"}
    assert {e["source"] for e in entries} == {"api"}
    assert {e["backend_name"] for e in entries} == {"up"}
    create, update = entries[-1], entries[-2]
    assert create["changes"]["api_key"] == [None, "sk-…5b4a"]
    assert create["changes"]["url"] == [None, upstream.url + "/v1"]
    assert update["changes"] == {"api_key": ["sk-…5b4a", "sk-…6666"], "priority": [100, 4]}
    assert entries[0]["changes"]["priority"] == [4, None]
    assert entries[1]["changes"] == {"enabled": [False, True]}
    assert RAW_KEY not in response.content.decode()
    assert set(entries[0]) == {"id", "created_at", "actor", "source", "action", "backend_name", "changes"}


def test_sensitive_headers_are_masked_in_responses_and_audit(api, upstream):
    secret = "tok-VERYSECRET-123456"
    response = api.post("/api/v1/backends", backend_body(upstream, headers={"X-Api-Key": secret, "X-Team": "ml"}))

    assert response.json()["headers"] == {"X-Api-Key": "tok-…3456", "X-Team": "ml"}
    assert secret not in api.get("/api/v1/audit").content.decode()
    assert secret not in api.get("/api/v1/backends").content.decode()


def test_config_application_is_audited_as_config(api):
    backends_static_apply(specs=[BackendSpec(name="cfg", url="http://127.0.0.1:9/v1", api_key=RAW_KEY)])
    backends_static_apply(specs=[BackendSpec(name="cfg", url="http://127.0.0.1:9/v2", api_key=RAW_KEY, priority=3)])
    backends_static_apply(specs=[])

    entries = api.get("/api/v1/audit?backend=cfg").json()["data"]

    assert [(e["action"], e["source"], e["actor"]) for e in entries] == [
        ("delete", "config", "config"),
        ("update", "config", "config"),
        ("create", "config", "config"),
    ]
    assert entries[1]["changes"] == {
        "priority": [100, 3],
        "url": ["http://127.0.0.1:9/v1", "http://127.0.0.1:9/v2"],
    }


def test_the_audit_log_filters_and_limits(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream, enabled=False))
    api.post("/api/v1/backends", backend_body(upstream, name="two", enabled=False))
    api.patch("/api/v1/backends/two", {"enabled": True})

    assert len(api.get("/api/v1/audit?limit=1").json()["data"]) == 1
    assert [e["backend_name"] for e in api.get("/api/v1/audit?backend=up").json()["data"]] == ["up"]
    assert [e["backend_name"] for e in api.get("/api/v1/audit?action=enable").json()["data"]] == ["two"]
    assert len(api.get("/api/v1/audit?source=api").json()["data"]) == 3
    assert api.get("/api/v1/audit?source=admin").json()["data"] == []


@pytest.mark.parametrize("query", ["limit=0", "limit=5000", "limit=x", "source=nowhere", "action=explode"])
def test_bad_audit_filters_are_400(api, query):
    response = api.get(f"/api/v1/audit?{query}")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == query.split("=")[0]


def test_a_failed_create_is_not_audited(api, upstream):
    api.post("/api/v1/backends", backend_body(upstream, priority=-1))

    assert not AuditLog.objects.exists()
    assert not Backend.objects.exists()
