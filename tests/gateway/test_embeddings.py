"""/v1/embeddings is routed by model like chat and passed through to OpenAI-compatible backends."""

import json

import openai
import pytest

from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import reply_bytes

RECORDED = recordings.response("openai", "embeddings_dimensions")


@pytest.fixture
def embedder(gateway, fake_provider):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/embeddings", reply_bytes(RECORDED))
    gateway.route((route_for(fake), ["text-embedding-3-small"]))
    return gateway, fake


def test_embeddings_pass_through_with_the_backend_key(embedder):
    gateway, fake = embedder
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="client", max_retries=0)

    result = client.embeddings.create(
        model="text-embedding-3-small", input=["Hello world"], dimensions=256, encoding_format="float"
    )

    assert len(result.data[0].embedding) == 256
    assert result.usage.prompt_tokens == json.loads(RECORDED)["usage"]["prompt_tokens"]
    sent = fake.requests_to("/v1/embeddings")[0]
    assert sent.json() == {
        "model": "text-embedding-3-small",
        "input": ["Hello world"],
        "dimensions": 256,
        "encoding_format": "float",
    }
    assert sent.headers["Authorization"] == "Bearer sk-test-key-0001"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"model": "text-embedding-3-small"}, id="missing-input"),
        pytest.param({"model": "text-embedding-3-small", "input": ""}, id="empty-input"),
        pytest.param({"input": "hi"}, id="missing-model"),
    ],
)
def test_invalid_embedding_requests_are_400(embedder, body):
    gateway, fake = embedder
    with gateway.client() as client:
        response = client.post("/v1/embeddings", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] in ("input", "model")
    assert fake.received == []
