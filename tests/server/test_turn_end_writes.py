"""Daphne's transport writes at the end of the loop turn (eldric_cloud/server/transport.py).
When the kernel takes only part of a write, a client that reads slowly must still get every
byte, in order, while other clients are served; and streams must arrive intact."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time

import pytest
from openai import OpenAI

from tests.cli_process import GatewayProcess
from tests.fakes.server import FakeProvider, openai_models, reply_bytes, reply_stream

BIG = 8 * 1024 * 1024  # far more than a socket's buffers hold


def big_answer() -> bytes:
    content = "".join(f"{i:07d}," for i in range(BIG // 8))
    return json.dumps(
        {
            "id": "chatcmpl-big",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


def stream_frames(count: int) -> list[bytes]:
    frames = []
    for i in range(count):
        chunk = {
            "id": "chatcmpl-s",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o-stream",
            "choices": [{"index": 0, "delta": {"content": f"<{i}>"}, "finish_reason": None}],
        }
        frames.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    return [*frames, b"data: [DONE]\n\n"]


@pytest.fixture(scope="module")
def gateway(data_dir):
    upstream = FakeProvider(name="big").start()
    answer = big_answer()
    upstream.on("GET", "/v1/models", openai_models("gpt-4o", "gpt-4o-stream"))
    upstream.on("POST", "/v1/chat/completions", lambda request: dispatch(request, answer))
    gateway = GatewayProcess(
        "--backends", f"big:{upstream.url}/v1", data_dir=data_dir(), env={"ELDRIC_MAX_RESPONSE_BYTES": str(4 * BIG)}
    ).start()
    yield gateway, hashlib.sha256(answer).hexdigest()
    gateway.stop()
    upstream.stop()


async def dispatch(request, answer: bytes):
    body = await request.json()
    if body.get("stream"):
        return await reply_stream(stream_frames(2000))(request)
    return await reply_bytes(answer)(request)


def slow_read(port: int) -> bytes:
    """A whole response, read by a client that first lets the gateway's writes back up (the
    answer is more than the kernel's buffers hold), then reads with pauses."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    time.sleep(1.0)
    received = []
    reads = 0
    while chunk := sock.recv(65536):
        received.append(chunk)
        reads += 1
        if reads % 20 == 0:
            time.sleep(0.02)
    sock.close()
    return b"".join(received)


def test_a_slow_reader_gets_every_byte_of_a_big_answer_while_others_are_served(gateway):
    process, digest = gateway
    result: dict[str, bytes] = {}
    reader = threading.Thread(target=lambda: result.setdefault("raw", slow_read(process.port)))
    reader.start()
    # Meanwhile the gateway answers other clients.
    client = OpenAI(base_url=process.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    while reader.is_alive():
        assert client.models.list().data
        time.sleep(0.1)
    reader.join()

    head, _, body = result["raw"].partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    assert hashlib.sha256(body).hexdigest() == digest


def test_a_long_stream_arrives_whole_and_in_order(gateway):
    process, _ = gateway
    client = OpenAI(base_url=process.url + "/v1", api_key="unused", max_retries=0, timeout=60)

    pieces = [
        chunk.choices[0].delta.content
        for chunk in client.chat.completions.create(
            model="gpt-4o-stream", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        if chunk.choices and chunk.choices[0].delta.content
    ]

    assert "".join(pieces) == "".join(f"<{i}>" for i in range(2000))


def dechunk(data: bytes) -> bytes:
    out, rest = [], data
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[:size])
        rest = rest[size + 2 :]
    return b"".join(out)
