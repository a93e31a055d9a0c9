"""A model discovered as an embedding model is not offered as a chat model, and the reverse.

Each backend is a real fake provider: discovery (``probe``) reads its model list, the snapshot is
built from what it said, and the official SDKs talk to a real gateway server with the database
blocked, so the check is shown to need no ORM.
"""

from __future__ import annotations

import anthropic
import openai
import pytest

from backends.probe import probe
from backends.snapshot import snapshot_assemble
from tests.conftest import route_for
from tests.fakes import cohere as fake_cohere
from tests.fakes import recordings
from tests.fakes.server import openai_models, reply_bytes, reply_json

EMBEDDED = recordings.response("openai", "embeddings_dimensions")


def install_discovered(gateway, *routes, default: str = "") -> None:
    """Discover each backend's models as the Celery task would, and route by what they said."""
    models = {}
    for route in routes:
        result = probe(route, timeout=5)
        assert result.status == "healthy", result.error
        models[route.name] = [(m.id, m.created, m.capability) for m in result.models]
    gateway.gateway.snapshots.install(
        snapshot_assemble(
            version=1,
            worker_id="cld-0000test",
            routes=list(routes),
            models=models,
            default_backend=default or routes[0].name,
        )
    )


@pytest.fixture
def openai_backend(gateway, fake_provider):
    fake = fake_provider("openai")
    fake.on("GET", "/v1/models", openai_models("gpt-4o-mini", "text-embedding-3-small", "dall-e-3", "whisper-1"))
    fake.on("POST", "/v1/embeddings", reply_bytes(EMBEDDED))
    install_discovered(gateway, route_for(fake))
    return fake


@pytest.fixture
def cohere_backend(gateway, fake_provider):
    fake = fake_provider("cohere")
    fake.on("GET", "/v1/models", fake_cohere.models())
    fake.on("POST", "/v2/embed", fake_cohere.embed(recordings.response("cohere", "v2_embed")))
    install_discovered(gateway, route_for(fake, kind="cohere", path="/v1"))
    return fake


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="client", max_retries=0)


def test_chat_with_an_embedding_model_is_refused_before_any_upstream(openai_backend, client):
    before = len(openai_backend.received)

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="text-embedding-3-small", messages=[{"role": "user", "content": "hi"}])

    assert caught.value.body == {
        "message": "The model `text-embedding-3-small` is an embedding model; use /v1/embeddings.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_supported",
    }
    assert len(openai_backend.received) == before


@pytest.mark.parametrize(
    ("model", "words"),
    [
        pytest.param("dall-e-3", "is an image model", id="image"),
        pytest.param("whisper-1", "is an audio model", id="audio"),
    ],
)
def test_chat_with_other_non_chat_models_names_their_capability(openai_backend, client, model, words):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], stream=True)
    assert words in caught.value.body["message"]


def test_completions_and_responses_refuse_an_embedding_model_too(openai_backend, client):
    with pytest.raises(openai.BadRequestError) as completion:
        client.completions.create(model="text-embedding-3-small", prompt="Say this is a test")
    with pytest.raises(openai.BadRequestError) as response:
        client.responses.create(model="text-embedding-3-small", input="Say this is a test")

    for caught in (completion, response):
        assert (
            caught.value.body["message"]
            == "The model `text-embedding-3-small` is an embedding model; use /v1/embeddings."
        )
    assert openai_backend.requests_to("/v1/completions") == []
    assert openai_backend.requests_to("/v1/chat/completions") == []
    assert openai_backend.requests_to("/v1/responses") == []


def test_messages_refuses_an_embedding_model_in_anthropic_s_shape(openai_backend, gateway):
    claude = anthropic.Anthropic(base_url=gateway.url, api_key="client", max_retries=0)

    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="text-embedding-3-small", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "The model `text-embedding-3-small` is an embedding model; use /v1/embeddings.",
        },
    }
    with pytest.raises(anthropic.BadRequestError) as counted:
        claude.messages.count_tokens(model="text-embedding-3-small", messages=[{"role": "user", "content": "hi"}])
    assert counted.value.body == caught.value.body
    assert openai_backend.requests_to("/v1/chat/completions") == []


def test_embeddings_still_reach_an_embedding_model_and_an_unknown_one(openai_backend, client):
    known = client.embeddings.create(model="text-embedding-3-small", input="Hello world", encoding_format="float")
    # Nothing says what gpt-4o-mini is for (an OpenAI list has no capability): the upstream decides.
    unknown = client.embeddings.create(model="gpt-4o-mini", input="Hello world", encoding_format="float")

    assert known.data[0].embedding and unknown.data[0].embedding
    assert [r.json()["model"] for r in openai_backend.requests_to("/v1/embeddings")] == [
        "text-embedding-3-small",
        "gpt-4o-mini",
    ]


def test_cohere_s_endpoints_decide_both_ways(cohere_backend, client):
    with pytest.raises(openai.BadRequestError) as chat_model:
        client.embeddings.create(model="command-a-03-2025", input="Hello")
    with pytest.raises(openai.BadRequestError) as embed_model:
        client.chat.completions.create(model="embed-v4.0", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as rerank_model:
        client.chat.completions.create(model="rerank-v3.5", messages=[{"role": "user", "content": "hi"}])

    assert (
        chat_model.value.body["message"] == "The model `command-a-03-2025` is a chat model; use /v1/chat/completions."
    )
    assert embed_model.value.body["message"] == "The model `embed-v4.0` is an embedding model; use /v1/embeddings."
    assert rerank_model.value.body["message"].startswith("The model `rerank-v3.5` is a rerank model")
    assert cohere_backend.requests_to("/v2/chat") == [] and cohere_backend.requests_to("/v2/embed") == []

    embedded = client.embeddings.create(model="embed-v4.0", input="Hello", encoding_format="float")
    assert embedded.data[0].embedding


def test_the_catalogue_and_retrieve_show_each_model_s_capabilities(openai_backend, cohere_backend, gateway, client):
    install_discovered(gateway, route_for(openai_backend), route_for(cohere_backend, kind="cohere", path="/v1"))

    listed = {m.id: m.model_extra["capabilities"] for m in client.models.list()}

    assert listed == {
        "gpt-4o-mini": ["chat"],
        "text-embedding-3-small": ["embedding"],
        "dall-e-3": ["image"],
        "whisper-1": ["audio"],
        "command-a-03-2025": ["chat"],
        "rerank-v3.5": ["rerank"],
        "embed-v4.0": ["embedding"],
        "command-r7b-12-2024": ["chat"],
        "command-r": ["chat"],
    }
    retrieved = client.models.retrieve("embed-v4.0")
    assert (retrieved.owned_by, retrieved.model_extra["capabilities"]) == ("cohere", ["embedding"])


def test_each_backend_s_word_counts_for_its_own_route(gateway, fake_provider, client):
    # Two Together-style backends list the same id: the better one says embedding, the other
    # chat. Chat skips the first, embeddings skip the second.
    def together(kind: str):
        return reply_json([{"id": "shared-model", "object": "model", "type": kind, "pricing": {}}])

    embedder = fake_provider("embedder").on("GET", "/v1/models", together("embedding"))
    embedder.on("POST", "/v1/embeddings", reply_bytes(EMBEDDED))
    chatty = fake_provider("chatty").on("GET", "/v1/models", together("chat"))
    chatty.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    install_discovered(gateway, route_for(embedder, priority=1), route_for(chatty, priority=2))

    answer = client.chat.completions.create(model="shared-model", messages=[{"role": "user", "content": "hi"}])
    client.embeddings.create(model="shared-model", input="Hello", encoding_format="float")

    assert answer.choices[0].message.content
    assert embedder.requests_to("/v1/chat/completions") == []
    assert len(embedder.requests_to("/v1/embeddings")) == 1
    assert chatty.requests_to("/v1/embeddings") == []
    # The catalogue entry is the best-priority backend's.
    assert {m.id: m.model_extra["capabilities"] for m in client.models.list()} == {"shared-model": ["embedding"]}


def test_a_model_only_the_default_ollama_backend_knows_shows_what_api_show_says(gateway, fake_provider, client):
    fake = fake_provider("ollama")
    # ShowResponse's ``capabilities`` (api/types.go), as ``ollama show`` prints them.
    show = {
        "modified_at": "2025-05-04T17:37:44.706015396-07:00",
        "details": {"format": "gguf", "family": "bert", "families": ["bert"]},
        "capabilities": ["embedding"],
    }
    fake.on("POST", "/api/show", reply_json(show))
    gateway.route((route_for(fake, kind="ollama", key="", path=""), ["llama3"]))

    model = client.models.retrieve("mxbai-embed-large:latest")

    assert (model.owned_by, model.model_extra["capabilities"]) == ("ollama", ["embedding"])
