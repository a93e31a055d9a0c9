"""``POST /v1/completions`` (legacy text completions) is routed by model like chat and passed
through to OpenAI-compatible backends; every other backend kind answers 400 naming itself.

The fake upstream answers with OpenAI's documented ``/v1/completions`` example (kept with the
recordings as ``openai/completions_create``, marked documented, not live): a
``text_completion`` object, or SSE chunks with a usage-only last chunk when the request asks
for ``stream_options.include_usage``.
"""

from __future__ import annotations

import json

import openai
import pytest
from aiohttp import web

from tests.conftest import route_for
from tests.fakes import recordings
from tests.fakes.server import reply_stream

MODEL = "gpt-3.5-turbo-instruct"
CLAUDE = "claude-sonnet-4-0"
USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
TEXTS = ["\n\nThis", " is", " indeed", " a", " test"]


def completion_answer(model: str) -> dict:
    """OpenAI's documented example answer (``tests/fixtures/recorded/openai/completions_create``),
    for ``model``."""
    return {**json.loads(recordings.response("openai", "completions_create")), "model": model}


def stream_frames(model: str, include_usage: bool) -> list[bytes]:
    base = {"id": "cmpl-7iA7iJjj8V2zOkCGvWF2hAkDWBQZe", "object": "text_completion", "created": 1690759702}
    chunks = [
        {
            **base,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "length" if last else None}],
            "model": model,
            "system_fingerprint": "fp_44709d6fcb",
            **({"usage": None} if include_usage else {}),
        }
        for last, text in ((i == len(TEXTS) - 1, t) for i, t in enumerate(TEXTS))
    ]
    if include_usage:
        chunks.append({**base, "choices": [], "model": model, "usage": USAGE})
    return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


async def openai_completions(request: web.Request) -> web.StreamResponse:
    """OpenAI's ``/v1/completions``: a prompt is required; usage in a stream only when asked."""
    body = await request.json()
    if request.headers.get("Authorization") != "Bearer sk-test-key-0001":
        return web.json_response({"error": {"message": "bad key", "type": "invalid_request_error"}}, status=401)
    if "prompt" not in body or "messages" in body:
        return web.json_response(
            {"error": {"message": "prompt is required", "type": "invalid_request_error", "param": "prompt"}},
            status=400,
        )
    if not body.get("stream"):
        return web.json_response(completion_answer(body["model"]))
    include_usage = (body.get("stream_options") or {}).get("include_usage") is True
    return await reply_stream(stream_frames(body["model"], include_usage))(request)


@pytest.fixture
def instruct(gateway, fake_provider):
    fake = fake_provider("openai")
    fake.on("POST", "/v1/completions", openai_completions)
    gateway.route((route_for(fake), [MODEL]))
    return fake


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="client", max_retries=0)


def test_completions_create_passes_through_and_counts_usage(gateway, instruct, client):
    result = client.completions.create(model=MODEL, prompt="Say this is a test", max_tokens=7, temperature=0)

    assert result.choices[0].text == "".join(TEXTS)
    assert result.usage.total_tokens == 12
    sent = instruct.requests_to("/v1/completions")[0]
    assert sent.json() == {"model": MODEL, "prompt": "Say this is a test", "max_tokens": 7, "temperature": 0}
    finished = gateway.recorder.wait_for(1)[0]
    assert (finished.usage.prompt_tokens, finished.usage.completion_tokens) == (5, 7)
    assert finished.backend == "openai"


def test_streamed_completions_arrive_whole_and_are_counted_without_a_usage_chunk(gateway, instruct, client):
    chunks = list(client.completions.create(model=MODEL, prompt="Say this is a test", stream=True))

    assert "".join(chunk.choices[0].text for chunk in chunks) == "".join(TEXTS)
    assert all(chunk.usage is None and chunk.choices for chunk in chunks)  # not asked for: not shown
    # The gateway asked upstream for usage, for its own accounting.
    assert instruct.requests_to("/v1/completions")[0].json()["stream_options"] == {"include_usage": True}
    finished = gateway.recorder.wait_for(1)[0]
    assert finished.usage.total_tokens == 12


def test_streamed_usage_chunk_reaches_a_client_that_asks_for_it(instruct, client):
    chunks = list(
        client.completions.create(
            model=MODEL, prompt="Say this is a test", stream=True, stream_options={"include_usage": True}
        )
    )

    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 12


def test_an_anthropic_backend_answers_400_that_says_it_does_not_serve_completions(gateway, fake_provider, client):
    claude = fake_provider("claude")
    gateway.route((route_for(claude, kind="anthropic"), [CLAUDE]))

    with pytest.raises(openai.BadRequestError) as raised:
        client.completions.create(model=CLAUDE, prompt="Say this is a test")

    error = raised.value.body
    assert error["type"] == "invalid_request_error"
    assert "anthropic backends do not serve /v1/completions" in error["message"]
    assert claude.received == []


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"model": MODEL}, id="missing-prompt"),
        pytest.param({"model": MODEL, "prompt": 3}, id="number-prompt"),
        pytest.param({"model": MODEL, "prompt": "hi", "stream": "yes"}, id="stream-not-bool"),
        pytest.param({"prompt": "hi"}, id="missing-model"),
    ],
)
def test_invalid_completions_requests_are_400_naming_the_field(gateway, instruct, body):
    with gateway.client() as http:
        response = http.post("/v1/completions", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] in ("prompt", "stream", "model")
    assert instruct.received == []


def test_get_on_completions_is_405(gateway, instruct):
    with gateway.client() as http:
        response = http.get("/v1/completions")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
