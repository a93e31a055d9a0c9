"""Streaming through the real servers (Daphne by default, uvicorn on request)."""

import threading
import time

import httpx
import openai
import pytest

from tests.cli_process import GatewayProcess
from tests.fakes import recordings
from tests.fakes.server import hold_until_closed, openai_models, reply_stream

USER = [{"role": "user", "content": "What is 4200 + 42?"}]


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_stream_is_not_buffered_and_a_disconnect_closes_upstream(fake_provider, server):
    fake = fake_provider("openai")
    fake.on("GET", "/v1/models", openai_models("gpt-4o"))
    frames = recordings.sse_frames(recordings.response("openai", "chat_stream_text"))
    release = threading.Event()
    fake.on("POST", "/v1/chat/completions", reply_stream(frames, hold_before_last=release, fake=fake))
    gateway = GatewayProcess("--server", server, "--backends", f"openai:{fake.url}/v1:sk-k-1234").start()
    try:
        # The upstream holds its last frame until the test releases it, so a gateway that
        # buffered the stream would send nothing: the first chunk must come within the deadline.
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=5)
        stream = client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
        first = next(iter(stream))
        assert first.choices[0].delta.role == "assistant"
        release.set()
        assert "4242" in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        # Second request: the client leaves mid-stream; the upstream connection is closed promptly.
        release.clear()
        with (
            httpx.Client(base_url=gateway.url, timeout=10) as raw,
            raw.stream("POST", "/v1/chat/completions", json={"model": "gpt-4o", "messages": USER, "stream": True}) as r,
        ):
            next(r.iter_raw())
        deadline = time.monotonic() + 5
        while fake.closed_streams == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert fake.closed_streams == 1
    finally:
        release.set()
        gateway.stop()


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_a_client_leaving_a_non_stream_request_closes_the_upstream_call_within_a_second(fake_provider, server):
    fake = fake_provider("openai")
    fake.on("GET", "/v1/models", openai_models("gpt-4o"))
    upstream_closed = threading.Event()

    fake.on("POST", "/v1/chat/completions", hold_until_closed(upstream_closed))
    gateway = GatewayProcess("--server", server, "--backends", f"openai:{fake.url}/v1:sk-k-1234").start()
    try:
        with pytest.raises(httpx.ReadTimeout), httpx.Client(base_url=gateway.url, timeout=0.5) as client:
            client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": USER})
        assert upstream_closed.wait(1.5), "the upstream request outlived its client"
    finally:
        gateway.stop()
