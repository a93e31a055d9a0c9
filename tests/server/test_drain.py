"""SIGTERM drains: in-flight streams finish, the ones that outlive the drain end cleanly, the process exits 0."""

from __future__ import annotations

import contextlib
import json
import socket
import threading

import httpx
import pytest

from tests.cli_process import GatewayProcess
from tests.fakes import recordings
from tests.fakes.server import openai_models, reply_stream

CHAT = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "What is 4200 + 42?"}]}
STREAMS = 5


@pytest.fixture
def held_streams(fake_provider):
    """A provider whose streams hold their last frame until ``release`` is set."""
    fake = fake_provider("openai")
    fake.on("GET", "/v1/models", openai_models("gpt-4o"))
    frames = recordings.sse_frames(recordings.response("openai", "chat_stream_text"))
    release = threading.Event()
    fake.on("POST", "/v1/chat/completions", reply_stream(frames, hold_before_last=release, fake=fake))
    yield fake, release
    release.set()


def open_streams(stack: contextlib.ExitStack, gateway: GatewayProcess, count: int) -> list:
    """``count`` streams, each past its first event, so all are in flight on the server."""
    streams = []
    for _ in range(count):
        client = stack.enter_context(httpx.Client(base_url=gateway.url, timeout=20))
        response = stack.enter_context(client.stream("POST", "/v1/chat/completions", json=CHAT))
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(line for line in lines if line).startswith("data: ")
        streams.append((response, lines))
    return streams


def refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_streams_in_flight_finish_during_the_drain(held_streams, data_dir):
    fake, release = held_streams
    gateway = GatewayProcess(
        "--backends", f"openai:{fake.url}/v1:sk-k-1234", env={"ELDRIC_DRAIN_SECONDS": "20"}, data_dir=data_dir()
    )
    gateway.start()
    try:
        with contextlib.ExitStack() as stack:
            streams = open_streams(stack, gateway, STREAMS)
            gateway.terminate()
            gateway.wait_for(lambda: refuses_connections(gateway.port), "the listener closed", timeout=5)
            assert gateway.process.poll() is None  # still serving the streams
            release.set()
            for _, lines in streams:
                rest = [line for line in lines if line]
                assert rest[-1] == "data: [DONE]"
                assert not any('"error"' in line for line in rest)
        assert gateway.wait_exit(10) == 0
        assert "drained" in gateway.logs()
    finally:
        gateway.stop()


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_streams_that_outlive_the_drain_end_with_an_error_event_and_done(held_streams, server, data_dir):
    fake, _ = held_streams  # never released
    worker = server == "daphne"  # once is enough for the order of the worker's stop
    gateway = GatewayProcess(
        "--backends",
        f"openai:{fake.url}/v1:sk-k-1234",
        env={"ELDRIC_DRAIN_SECONDS": "1"},
        worker=worker,
        server=server,
        data_dir=data_dir(),
    )
    gateway.start()
    try:
        with contextlib.ExitStack() as stack:
            streams = open_streams(stack, gateway, STREAMS)
            gateway.terminate()
            for _, lines in streams:
                rest = [line for line in lines if line]
                assert rest[-1] == "data: [DONE]", rest[-3:]
                error = json.loads(rest[-2].removeprefix("data: "))["error"]
                assert error["code"] == "server_shutting_down"
        assert gateway.wait_exit(15) == 0
        logs = gateway.logs()
        if worker:  # the embedded worker outlives the gateway's drain, not the other way round
            assert logs.index("drained") < logs.index("embedded Celery worker stopped")
    finally:
        gateway.stop()


def test_during_the_drain_delay_readiness_fails_and_answers_close_the_connection(data_dir):
    gateway = GatewayProcess(env={"ELDRIC_DRAIN_DELAY_SECONDS": "60"}, data_dir=data_dir()).start()
    try:
        assert gateway.get("/health/ready").status_code == 200
        gateway.terminate()
        ready = gateway.wait_for(
            lambda: (r := gateway.get("/health/ready")).status_code == 503 and r, "readiness 503", timeout=5
        )
        assert ready.headers["connection"] == "close"
        health = gateway.get("/health")  # still served, for clients already on their way
        assert health.status_code == 200
        assert health.headers["connection"] == "close"
        gateway.terminate()  # a second signal skips the rest of the delay
        assert gateway.wait_exit(10) == 0
    finally:
        gateway.stop()
