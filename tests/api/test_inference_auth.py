"""/v1/* through the real gateway (no database): open by default, ELDRIC_MASTER_KEY when set."""

import openai
import pytest

from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import reply_bytes

MASTER_KEY = "mk-test-master-0123456789"
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture
def routed(gateway, fake_provider):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    gateway.route((route_for(fake), ["gpt-4o"]))
    return gateway


@pytest.fixture
def master_key(routed):
    routed.configure(master_key=MASTER_KEY)
    return MASTER_KEY


def test_inference_is_open_by_default(routed):
    with routed.client() as client:
        assert client.get("/v1/models").status_code == 200
        assert client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Bearer"}, id="empty-bearer"),
        pytest.param({"Authorization": f"Basic {MASTER_KEY}"}, id="wrong-scheme"),
    ],
)
def test_a_missing_master_key_is_401(routed, master_key, headers):
    with routed.client() as client:
        response = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER}, headers=headers)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_api_key"


@pytest.mark.parametrize("path", ["/v1/models", "/v1/chat/completions", "/v1/embeddings"])
def test_a_wrong_master_key_is_401(routed, master_key, path):
    with routed.client() as client:
        response = client.post(path, json={}, headers={"Authorization": "Bearer not-the-key"})
        if path == "/v1/models":
            response = client.get(path, headers={"Authorization": "Bearer not-the-key"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.json()["error"]["type"] == "authentication_error"


def test_the_sdk_api_key_is_the_master_key(routed, master_key):
    good = openai.OpenAI(base_url=routed.url + "/v1", api_key=MASTER_KEY, max_retries=0)
    bad = openai.OpenAI(base_url=routed.url + "/v1", api_key="sk-wrong", max_retries=0)

    completion = good.chat.completions.create(model="gpt-4o", messages=USER)
    assert completion.choices[0].message.content
    assert [m.id for m in good.models.list()] == ["gpt-4o"]
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o", messages=USER)


def test_health_stays_open_with_a_master_key(routed, master_key):
    with routed.client() as client:
        assert client.get("/health").status_code == 200
