"""What a discovered model is for: the id heuristic and what each adapter reads from its provider."""

from __future__ import annotations

import json

import pytest

from backends import capabilities
from backends.providers.anthropic import AnthropicProvider
from backends.providers.openai_compatible import OpenAICompatibleProvider
from backends.snapshot import BackendRoute, snapshot_assemble
from gateway.breaker import BreakerBoard
from gateway.routing import plan

ROUTE = BackendRoute(name="up", kind="openai_compatible", url="http://127.0.0.1:1/v1", api_key="sk-test-key-0001")


@pytest.mark.parametrize(
    ("model_id", "capability"),
    [
        ("text-embedding-3-small", "embedding"),
        ("text-embedding-ada-002", "embedding"),
        ("nomic-embed-text:latest", "embedding"),
        ("accounts/fireworks/models/nomic-embed-text-v1.5", "embedding"),
        ("BAAI/bge-m3", "embedding"),
        ("thenlper/gte-large", "embedding"),
        ("intfloat/multilingual-e5-large", "embedding"),
        ("mistral-embed", "embedding"),
        ("rerank-v3.5", "rerank"),
        ("BAAI/bge-reranker-v2-m3", "rerank"),
        ("dall-e-3", "image"),
        ("gpt-image-1", "image"),
        ("black-forest-labs/FLUX.1-schnell", "image"),
        ("stabilityai/stable-diffusion-xl-base-1.0", "image"),
        ("whisper-1", "audio"),
        ("whisper-large-v3-turbo", "audio"),
        ("tts-1-hd", "audio"),
        ("gpt-4o-mini-tts", "audio"),
        ("gpt-4o-transcribe", "audio"),
        ("omni-moderation-latest", "moderation"),
        ("text-moderation-stable", "moderation"),
    ],
)
def test_an_openai_style_id_names_what_the_model_is_for(model_id, capability):
    assert capabilities.from_id(model_id) == capability


@pytest.mark.parametrize(
    "model_id",
    [
        "gpt-4o-mini",
        "gpt-4o-audio-preview",  # an audio *chat* model: chat completions serve it
        "o3-mini",
        "claude-sonnet-4-20250514",
        "llama-3.3-70b-versatile",
        "Qwen/Qwen2.5-72B-Instruct-Turbo",
        "deepseek-chat",
        "gpt-3.5-turbo-instruct",  # completion only, but only a provider may say so
        "qwen3:latest",
    ],
)
def test_any_other_id_is_unknown_and_listed_as_chat(model_id):
    assert capabilities.from_id(model_id) == capabilities.UNKNOWN
    assert capabilities.listed(capabilities.from_id(model_id)) == ["chat"]


@pytest.mark.parametrize(
    ("capability", "endpoint", "reason"),
    [
        ("embedding", "chat", "an embedding model; use /v1/embeddings"),
        ("embedding", "completions", "an embedding model; use /v1/embeddings"),
        ("rerank", "chat", "a rerank model; use a rerank endpoint (the gateway has none)"),
        ("image", "chat", "an image model; use an images endpoint (the gateway has none)"),
        ("chat", "embeddings", "a chat model; use /v1/chat/completions"),
        ("completion", "embeddings", "a text completion model; use /v1/completions"),
        ("chat", "chat", None),
        ("completion", "chat", None),  # the upstream decides whether a base model chats
        ("chat", "completions", None),
        ("embedding", "embeddings", None),
        ("", "chat", None),
        ("", "embeddings", None),
        ("embedding", "something-new", None),
    ],
)
def test_only_a_known_mismatch_is_refused(capability, endpoint, reason):
    assert capabilities.refusal(capability, endpoint) == reason


def test_openai_compatible_lists_say_what_together_and_mistral_report():
    # Together: a bare array with ``type``; Mistral: ``capabilities.completion_chat``.
    together = [
        {"id": "meta-llama/Llama-3.3-70B-Instruct-Turbo", "object": "model", "type": "chat", "pricing": {}},
        {"id": "meta-llama/Meta-Llama-3-70B", "object": "model", "type": "language", "pricing": {}},
        {"id": "togethercomputer/m2-bert-80M-32k-retrieval", "object": "model", "type": "embedding"},
        {"id": "Salesforce/Llama-Rank-V1", "object": "model", "type": "rerank"},
        {"id": "black-forest-labs/FLUX.1-schnell", "object": "model", "type": "image"},
        {"id": "openai/whisper-large-v3", "object": "model", "type": "transcribe"},
        {"id": "meta-llama/Llama-Guard-4-12B", "object": "model", "type": "moderation"},
    ]
    mistral = {
        "object": "list",
        "data": [
            {"id": "mistral-small-latest", "object": "model", "capabilities": {"completion_chat": True}},
            {"id": "mistral-embed", "object": "model", "capabilities": {"completion_chat": False}},
            {"id": "some-model", "object": "model", "capabilities": {"completion_chat": False}},
        ],
    }
    provider = OpenAICompatibleProvider()

    listed = provider.parse_models(ROUTE, json.dumps(together).encode()).models
    assert [m.capability for m in listed] == [
        "chat",
        "completion",
        "embedding",
        "rerank",
        "image",
        "audio",
        "moderation",
    ]
    listed = provider.parse_models(ROUTE, json.dumps(mistral).encode()).models
    assert [(m.id, m.capability) for m in listed] == [
        ("mistral-small-latest", "chat"),
        ("mistral-embed", "embedding"),
        ("some-model", ""),
    ]


def test_a_single_openai_model_is_classified_like_the_list():
    provider = OpenAICompatibleProvider()
    body = json.dumps({"id": "text-embedding-3-large", "object": "model", "created": 1705953180}).encode()
    assert provider.parse_model(ROUTE, body).capability == "embedding"


def test_every_anthropic_model_is_a_chat_model():
    page = {
        "data": [{"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5"}],
        "has_more": False,
        "first_id": "claude-haiku-4-5",
        "last_id": "claude-haiku-4-5",
    }
    route = BackendRoute(name="claude", kind="anthropic", url="http://127.0.0.1:1/v1", api_key="sk-ant-test-0001")
    assert [m.capability for m in AnthropicProvider().parse_models(route, json.dumps(page).encode()).models] == ["chat"]


# --- routing: the check is a lookup in the snapshot -------------------------------------------


def _route(name: str, priority: int = 1, health: str = "healthy") -> BackendRoute:
    return BackendRoute(
        name=name, kind="openai_compatible", url=f"http://{name}", api_key="k", priority=priority, health=health
    )


def _snapshot(*backends, default: str = ""):
    return snapshot_assemble(
        version=1,
        worker_id="cld-x",
        routes=[r for r, _ in backends],
        models={r.name: [(m, None, c) for m, c in said] for r, said in backends},
        default_backend=default,
        organisations={"acme": True},
    )


def _plan(snapshot, model: str, endpoint: str | None, organisation: str = ""):
    board = BreakerBoard(failure_threshold=3, cooldown=30.0)
    return plan(snapshot.for_org(organisation), model, board, endpoint=endpoint)


def test_routing_refuses_only_when_every_backend_says_the_model_does_not_fit():
    snap = _snapshot(
        (_route("a", 1), [("emb", "embedding"), ("both", "embedding"), ("guess", "")]),
        (_route("b", 2), [("both", "chat"), ("guess", "chat")]),
        default="a",
    )

    refused = _plan(snap, "emb", "chat")
    assert (refused.error.status, refused.error.param, refused.candidates) == (400, "model", ())
    assert refused.error.message == "The model `emb` is an embedding model; use /v1/embeddings."
    # Each backend's word counts for its own route.
    assert [r.name for r in _plan(snap, "both", "chat").candidates] == ["b"]
    assert [r.name for r in _plan(snap, "both", "embeddings").candidates] == ["a"]
    # A backend that does not say keeps its place for every endpoint.
    assert [r.name for r in _plan(snap, "guess", "embeddings").candidates] == ["a"]
    assert [r.name for r in _plan(snap, "guess", "chat").candidates] == ["a", "b"]
    # No endpoint (GET /v1/models/{id}): nothing is filtered; an unlisted model goes to the default.
    assert [r.name for r in _plan(snap, "emb", None).candidates] == ["a"]
    assert [r.name for r in _plan(snap, "not-listed", "embeddings").candidates] == ["a"]
    # Organisation views carry the same capabilities.
    assert _plan(snap, "emb", "chat", organisation="acme").error.status == 400


def test_a_refusal_comes_before_the_health_verdict():
    # The model would never fit, however healthy its backend becomes: say so, not 503.
    snap = _snapshot((_route("a", health="auth_failed"), [("emb", "embedding")]))
    assert _plan(snap, "emb", "chat").error.status == 400
