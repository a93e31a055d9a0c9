"""Bad input gets a clear OpenAI-shaped error with the right status, never a 500."""

import json
import random

import pytest

from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import reply_bytes


@pytest.fixture
def routed(gateway, fake_provider):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    gateway.route((route_for(fake), ["gpt-4o"]))
    return gateway, fake


def assert_openai_error(response, status: int, param=None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        pytest.param(b'{"model": "gpt-4o", "messages": [', None, "not valid JSON", id="invalid-json"),
        pytest.param(b"", None, "empty", id="empty-body"),
        pytest.param(b"[1, 2, 3]", None, "JSON object", id="array-body"),
        pytest.param(b'"just a string"', None, "JSON object", id="string-body"),
        pytest.param(b'{"messages": [{"role": "user", "content": "hi"}]}', "model", "model", id="missing-model"),
        pytest.param(
            b'{"model": "", "messages": [{"role": "user", "content": "x"}]}', "model", "model", id="empty-model"
        ),
        pytest.param(
            b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}', "model", "model", id="model-not-str"
        ),
        pytest.param(b'{"model": "gpt-4o"}', "messages", "messages", id="missing-messages"),
        pytest.param(b'{"model": "gpt-4o", "messages": []}', "messages", "messages", id="empty-messages"),
        pytest.param(b'{"model": "gpt-4o", "messages": "hi"}', "messages", "messages", id="messages-not-array"),
        pytest.param(
            b'{"model": "gpt-4o", "messages": [{}], "stream": "yes"}', "stream", "stream", id="stream-not-bool"
        ),
        pytest.param(b"\xff\xfe\xfa not utf-8", None, "not valid JSON", id="invalid-utf8"),
        pytest.param(b"[" * 100_000, None, "not valid JSON", id="deeply-nested"),
    ],
)
def test_invalid_chat_bodies_are_400_and_never_reach_upstream(routed, body, param, fragment):
    gateway, fake = routed
    with gateway.client() as client:
        response = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})

    error = assert_openai_error(response, 400, param)
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"
    assert fake.received == []


def test_body_over_the_limit_is_413_by_declared_length(routed):
    gateway, fake = routed
    gateway.configure(max_body_bytes=1024)
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 2000}]})

    with gateway.client() as client:
        response = client.post("/v1/chat/completions", content=body)

    assert assert_openai_error(response, 413)["code"] == "request_too_large"
    assert fake.received == []


def test_body_over_the_limit_is_413_when_streamed_without_a_length(routed):
    def chunks():
        yield b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}]}'

    gateway, _ = routed
    gateway.configure(max_body_bytes=1024)
    with gateway.client() as client:
        response = client.post("/v1/chat/completions", content=chunks())

    assert_openai_error(response, 413)


def test_wrong_method_is_405(routed):
    gateway, _ = routed
    with gateway.client() as client:
        assert_openai_error(client.get("/v1/chat/completions"), 405)
        assert_openai_error(client.post("/v1/models"), 405)
        assert_openai_error(client.delete("/v1/models/gpt-4o"), 405)


def test_unknown_inference_path_is_404_in_the_openai_shape(routed):
    gateway, _ = routed
    with gateway.client() as client:
        assert_openai_error(client.post("/v1/completions-typo", json={}), 404)
        assert_openai_error(client.get("/v1/models/no-such-model"), 404, "model")


def test_random_bytes_never_produce_a_server_error(routed):
    gateway, _ = routed
    rng = random.Random(1234)
    samples = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))) for _ in range(150)]
    samples += [json.dumps(v).encode() for v in (None, 0, True, {"model": None}, {"model": ["x"], "messages": [1]})]
    with gateway.client() as client:
        for body in samples:
            response = client.post("/v1/chat/completions", content=body)
            assert response.status_code < 500, body
            assert "Traceback" not in response.text
