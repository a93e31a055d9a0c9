"""A fast fake OpenAI provider for the benchmark: raw asyncio, HTTP/1.1 keep-alive, stdlib only.

It must cost far less per request than the gateway, so that what ``bench/run.py`` measures
through the gateway is the gateway. It serves:

- ``GET /v1/models``: a few models in the OpenAI list shape;
- ``POST /v1/chat/completions``: a ~700-byte ``chat.completion`` JSON answer, or, when the
  body contains ``"stream": true``, 20 ``chat.completion.chunk`` SSE events and
  ``data: [DONE]`` with chunked transfer encoding, one socket write per event;
- anything else: 404 in the OpenAI error shape.

All answers are built once at start-up. With ``--stream-interval SECONDS`` (``bench/scale.py``'s
long streams) a stream is paced instead: one event every SECONDS, ``--stream-chunks`` of them,
each event's ``content`` being its send time (``time.time()``), so a client can compute how long
an event took to get through the gateway. ``--stream-chunks`` alone changes the number of
pre-built events. Run it alone with
``python bench/fake_provider.py --port 0``: it prints ``listening on 127.0.0.1:<port>``
and serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
import time

MODELS = ("bench-small", "bench-large", "gpt-4o-mini")
CREATED = 1_764_201_600  # 2025-11-27
STREAM_CHUNKS = 20
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 8 * 1024 * 1024
STREAM_FLAG = re.compile(rb'"stream"\s*:\s*true')

COMMON_HEADERS = (
    b"server: fake-openai\r\n"
    b"x-request-id: req_0123456789abcdef0123456789abcdef\r\n"
    b"openai-processing-ms: 1\r\n"
    b"x-ratelimit-remaining-requests: 9999\r\n"
)


def _json_response(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n" + COMMON_HEADERS + b"\r\n" + body
    )


def _completion_body() -> bytes:
    answer = {
        "id": "chatcmpl-bench0123456789abcdefghijklmnop",
        "object": "chat.completion",
        "created": CREATED,
        "model": "bench-small",
        "system_fingerprint": "fp_bench0001",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": (
                        "Hello! This is a canned answer from the benchmark's fake provider, "
                        "long enough to look like a short, real chat completion: a sentence or two, "
                        "so the gateway relays a realistic number of bytes."
                    ),
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 24,
            "completion_tokens": 52,
            "total_tokens": 76,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
    }
    return json.dumps(answer, separators=(",", ":")).encode()


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n"
    b"cache-control: no-cache\r\n" + COMMON_HEADERS + b"\r\n"
)
STREAM_END = _chunked(b"data: [DONE]\n\n") + b"0\r\n\r\n"


def _stream_pieces(chunks: int = STREAM_CHUNKS) -> tuple[bytes, ...]:
    """Status line and headers, then one chunked-encoded SSE event per piece, then the terminator."""
    pieces = [STREAM_HEAD]
    for i in range(chunks):
        delta: dict = {"content": f"tok{i} "}
        if i == 0:
            delta = {"role": "assistant", "content": ""}
        chunk = {
            "id": "chatcmpl-bench0123456789abcdefghijklmnop",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": "bench-small",
            "system_fingerprint": "fp_bench0001",
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": "stop" if i == chunks - 1 else None,
                }
            ],
        }
        pieces.append(_chunked(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"))
    pieces.append(STREAM_END)
    return tuple(pieces)


# A paced event: the content is the send time, filled in when the event is sent.
TIMED_EVENT = (
    b'data: {"id":"chatcmpl-bench0123456789abcdefghijklmnop","object":"chat.completion.chunk",'
    b'"created":%d,"model":"bench-small","system_fingerprint":"fp_bench0001",'
    b'"choices":[{"index":0,"delta":{"content":"%%.6f"},"logprobs":null,"finish_reason":%%s}]}\n\n'
) % CREATED


def timed_event(last: bool) -> bytes:
    return _chunked(TIMED_EVENT % (time.time(), b'"stop"' if last else b"null"))


def _models_body() -> bytes:
    data = [{"id": m, "object": "model", "created": CREATED, "owned_by": "bench"} for m in MODELS]
    return json.dumps({"object": "list", "data": data}).encode()


COMPLETION = _json_response(b"200 OK", _completion_body())
STREAM = _stream_pieces()
MODELS_LIST = _json_response(b"200 OK", _models_body())
NOT_FOUND = _json_response(
    b"404 Not Found",
    b'{"error":{"message":"Unknown endpoint.","type":"invalid_request_error","param":null,"code":"unknown_url"}}',
)
BAD_REQUEST = _json_response(
    b"400 Bad Request",
    b'{"error":{"message":"Malformed request.","type":"invalid_request_error","param":null,"code":null}}',
)


class Pacing:
    """How streams are sent: all at once (interval 0), or one event every ``interval`` seconds."""

    __slots__ = ("chunks", "interval", "stream")

    def __init__(self, interval: float = 0.0, chunks: int = STREAM_CHUNKS) -> None:
        self.interval = interval
        self.chunks = chunks
        self.stream = STREAM if chunks == STREAM_CHUNKS else _stream_pieces(chunks)


class FakeOpenAI(asyncio.Protocol):
    """One connection: parse requests as they arrive (pipelining allowed), answer from memory."""

    __slots__ = ("buffer", "close_after", "paced", "pacing", "transport")

    def __init__(self, pacing: Pacing | None = None) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.pacing = pacing or Pacing()
        # The timer of a paced stream in progress; requests behind it wait in the buffer.
        self.paced: asyncio.TimerHandle | None = None
        self.close_after = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.transport = None
        if self.paced is not None:
            self.paced.cancel()
            self.paced = None

    def data_received(self, data: bytes) -> None:
        self.buffer = self.buffer + data if self.buffer else data
        self._drain()

    def _drain(self) -> None:
        while self.transport is not None and self.buffer and self.paced is None:
            if not self._handle_one():
                return

    def _start_paced(self, close: bool) -> None:
        self.close_after = close
        self.transport.write(STREAM_HEAD)
        # call_later, not a task per stream: thousands of open streams cost one timer each.
        self.paced = asyncio.get_running_loop().call_later(self.pacing.interval, self._send_paced, 0)

    def _send_paced(self, sent: int) -> None:
        if self.transport is None:
            return
        last = sent == self.pacing.chunks - 1
        self.transport.write(timed_event(last))
        if not last:
            self.paced = asyncio.get_running_loop().call_later(self.pacing.interval, self._send_paced, sent + 1)
            return
        self.transport.write(STREAM_END)
        self.paced = None
        if self.close_after:
            self.transport.close()
            self.buffer = b""
            return
        self._drain()

    def _fail(self) -> None:
        self.transport.write(BAD_REQUEST)
        self.transport.close()
        self.buffer = b""

    def _handle_one(self) -> bool:
        """Answer one complete request from the buffer; False when more bytes are needed."""
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEADER_BYTES:
                self._fail()
            return False
        head = buffer[:end].split(b"\r\n")
        try:
            method, target, version = head[0].split(b" ", 2)
        except ValueError:
            self._fail()
            return False
        length = 0
        close = version == b"HTTP/1.0"
        for line in head[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    self._fail()
                    return False
            elif name == b"connection":
                token = value.strip().lower()
                close = token == b"close" or (close and token != b"keep-alive")
            elif name == b"transfer-encoding":
                # Clients that matter here (wrk, httpx, aiohttp) send Content-Length.
                self._fail()
                return False
        if length > MAX_BODY_BYTES:
            self._fail()
            return False
        start = end + 4
        if len(buffer) < start + length:
            return False
        body = buffer[start : start + length]
        self.buffer = buffer[start + length :]
        path = target.split(b"?", 1)[0]
        write = self.transport.write
        if method == b"POST" and path == b"/v1/chat/completions":
            if STREAM_FLAG.search(body):
                if self.pacing.interval > 0:
                    self._start_paced(close)
                    return True  # _drain stops here until the stream has ended
                for piece in self.pacing.stream:
                    write(piece)
            else:
                write(COMPLETION)
        elif method == b"GET" and path == b"/v1/models":
            write(MODELS_LIST)
        else:
            write(NOT_FOUND)
        if close:
            self.transport.close()
            self.buffer = b""
            return False
        return True


async def serve(host: str, port: int, pacing: Pacing | None = None) -> None:
    loop = asyncio.get_running_loop()
    pacing = pacing or Pacing()
    server = await loop.create_server(lambda: FakeOpenAI(pacing), host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument(
        "--stream-interval",
        type=float,
        default=0.0,
        help="seconds between the events of a stream, each carrying its send time (default 0: all at once)",
    )
    parser.add_argument(
        "--stream-chunks", type=int, default=STREAM_CHUNKS, help=f"events per stream (default {STREAM_CHUNKS})"
    )
    args = parser.parse_args(argv)
    if args.stream_interval < 0 or args.stream_chunks < 1:
        parser.error("--stream-interval must be >= 0 and --stream-chunks >= 1")
    asyncio.run(serve(args.host, args.port, Pacing(args.stream_interval, args.stream_chunks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
