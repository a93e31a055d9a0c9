"""Discovery stores what each model is for, keeps it current, and the snapshot carries it."""

from __future__ import annotations

import json
from importlib import import_module

import pytest
from django.apps import apps

from backends.models import Backend, DiscoveredModel
from backends.providers.base import ModelInfo
from backends.selectors import model_catalogue, routing_snapshot_build
from backends.services import backend_discover, backend_models_sync
from tests.fakes import cohere as fake_cohere

pytestmark = pytest.mark.django_db


def stored(backend: Backend) -> dict[str, str]:
    return dict(backend.models.values_list("model_id", "capability"))


def test_discovery_of_a_cohere_backend_stores_each_model_s_capability(fake_provider):
    fake = fake_provider("cohere").on("GET", "/v1/models", fake_cohere.models())
    backend = Backend.objects.create(name="cohere", kind="cohere", url=fake.url + "/v1", api_key_encrypted="")
    backend.set_api_key("sk-test-key-0001")
    backend.save()

    result = backend_discover(backend_id=backend.pk)

    assert result.status == "healthy"
    assert stored(backend) == {
        "command-a-03-2025": "chat",
        "rerank-v3.5": "rerank",
        "embed-v4.0": "embedding",
        "command-r7b-12-2024": "chat",
        "command-r": "chat",
    }
    snapshot = routing_snapshot_build()
    assert snapshot.model_capabilities["embed-v4.0"] == ("embedding",)
    listed = {m["id"]: m["capabilities"] for m in json.loads(snapshot.models_body)["data"]}
    assert listed["rerank-v3.5"] == ["rerank"] and listed["command-a-03-2025"] == ["chat"]
    catalogue = {m["id"]: m for m in model_catalogue()}
    assert catalogue["embed-v4.0"]["capabilities"] == ["embedding"]
    assert catalogue["embed-v4.0"]["backends"][0]["capability"] == "embedding"


def test_a_model_the_provider_reclassifies_is_updated_and_republished():
    backend = Backend.objects.create(name="local", kind="ollama", url="http://ollama:11434")
    backend_models_sync(backend=backend, models=[ModelInfo("all-minilm:latest"), ModelInfo("qwen3:latest")])
    version = routing_snapshot_build().version

    # A newer Ollama lists ``capabilities``: the one model becomes known, the other stays.
    added, removed = backend_models_sync(
        backend=backend,
        models=[ModelInfo("all-minilm:latest", capability="embedding"), ModelInfo("qwen3:latest")],
    )

    assert (added, removed) == ([], [])
    assert stored(backend) == {"all-minilm:latest": "embedding", "qwen3:latest": ""}
    snapshot = routing_snapshot_build()
    assert snapshot.version > version
    assert snapshot.model_capabilities["all-minilm:latest"] == ("embedding",)


def test_the_migration_classifies_models_discovery_had_only_assumed_were_chat_by_their_id():
    openai = Backend.objects.create(name="openai", kind="openai_compatible", url="https://api.openai.com/v1")
    claude = Backend.objects.create(name="claude", kind="anthropic", url="https://api.anthropic.com/v1")
    for model_id in ("gpt-4o-mini", "text-embedding-3-small", "whisper-1"):
        DiscoveredModel.objects.create(backend=openai, model_id=model_id, capability="chat")
    DiscoveredModel.objects.create(backend=claude, model_id="claude-embed-lookalike", capability="chat")
    migration = import_module("backends.migrations.0009_discoveredmodel_capability_unknown")

    migration.classify_by_id(apps, None)

    # An id that says nothing becomes unknown: listed as chat, refused nowhere.
    assert stored(openai) == {"gpt-4o-mini": "", "text-embedding-3-small": "embedding", "whisper-1": "audio"}
    # Anthropic's word (every model chats) is not second-guessed by the id.
    assert stored(claude) == {"claude-embed-lookalike": "chat"}
