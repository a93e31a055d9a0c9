"""The real ``eldric-cloudd``: discovery's word on a model reaches routing through the database."""

import openai

from tests.cli_process import GatewayProcess
from tests.fakes.server import openai_models


def test_a_discovered_embedding_model_is_not_served_as_chat(fake_provider):
    fake = fake_provider("openai")
    fake.on("GET", "/v1/models", openai_models("gpt-4o-mini", "text-embedding-3-small"))
    gateway = GatewayProcess("--backends", f"openai:{fake.url}/v1:sk-k-1234", worker=True).start()
    try:
        gateway.wait_for(lambda: len(gateway.get("/v1/models").json()["data"]) == 2, timeout=15)
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="client", max_retries=0)
        listed = {m.id: m.model_extra["capabilities"] for m in client.models.list()}
        try:
            client.chat.completions.create(model="text-embedding-3-small", messages=[{"role": "user", "content": "hi"}])
        except openai.BadRequestError as refused:
            error = refused.body
        else:
            error = None
    finally:
        assert gateway.stop() == 0

    assert listed == {"gpt-4o-mini": ["chat"], "text-embedding-3-small": ["embedding"]}
    assert error == {
        "message": "The model `text-embedding-3-small` is an embedding model; use /v1/embeddings.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_supported",
    }
    assert fake.requests_to("/v1/chat/completions") == []
