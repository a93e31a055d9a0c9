"""Minimal ASGI request/response helpers for the gateway's own endpoints."""

from __future__ import annotations

import json
import time

from backends.providers.base import OpenAIError
from gateway.context import RequestContext

JSON = b"application/json"


class RequestRejected(Exception):
    def __init__(self, error: OpenAIError) -> None:
        super().__init__(error.message)
        self.error = error


async def read_body(receive, limit: int, declared: bytes | None) -> bytes:
    """The whole request body, refused with 413 as soon as it passes ``limit``."""
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestRejected(OpenAIError(400, "invalid Content-Length header")) from None
        if size > limit:
            raise RequestRejected(_too_large(limit))
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestRejected(OpenAIError(499, "client disconnected"))
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise RequestRejected(_too_large(limit))
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> OpenAIError:
    return OpenAIError(413, f"request body exceeds the limit of {limit} bytes", code="request_too_large")


def header(scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def accepts_gzip(accept_encoding: bytes | None) -> bool:
    """Whether an ``Accept-Encoding`` value takes gzip: named, or ``*``, with a q above 0."""
    if not accept_encoding:
        return False
    wildcard = False
    for item in accept_encoding.decode("latin-1").lower().split(","):
        coding, _, parameters = item.partition(";")
        coding = coding.strip()
        if coding not in ("gzip", "x-gzip", "*"):
            continue
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if coding == "*":
            wildcard = quality > 0
        else:
            return quality > 0
    return wildcard


class Responder:
    """The client's side of one request.

    Every answer carries ``x-request-id``, and ``x-eldric-backend`` once a backend was
    reached (error answers included). It records in the context what the client got: the
    status, the error class and when the first byte left.
    """

    __slots__ = ("_send", "before_end", "close_connection", "ctx", "ended", "extra_headers", "started", "streaming")

    def __init__(self, send, ctx: RequestContext, *, close_connection: bool = False) -> None:
        self._send = send
        self.ctx = ctx
        self.close_connection = close_connection
        self.started = False
        self.ended = False
        self.streaming = False
        # Sent with whatever answer the request gets (the rate-limit headers of a limited key).
        self.extra_headers: list[tuple[bytes, bytes]] | None = None
        # Awaited once, just before the last byte of the answer goes out (a budget's charge,
        # so that a client never sees its request end before the request was paid for).
        self.before_end = None

    def native_provider(self, route):
        """The adapter that speaks ``route``'s own protocol with the client's request as it came,
        for an ingress whose clients speak it too; None (here) means the OpenAI form."""
        return None

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        ctx = self.ctx
        headers.append((b"x-request-id", ctx.request_id.encode()))
        if ctx.backend:
            headers.append((b"x-eldric-backend", ctx.backend.encode()))
        if self.extra_headers:
            headers.extend(self.extra_headers)
        if self.close_connection:
            headers.append((b"connection", b"close"))
        ctx.status = status
        self.started = True
        await self._send({"type": "http.response.start", "status": status, "headers": headers})

    async def body(self, data: bytes, *, more: bool = False) -> None:
        if data and self.ctx.first_client_byte is None:
            self.ctx.first_client_byte = time.monotonic()
        if not more:
            if self.before_end is not None:
                hook, self.before_end = self.before_end, None
                await hook()
            self.ended = True
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    async def bytes(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None, content_type: bytes = JSON
    ) -> None:
        response_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        if headers:
            response_headers.extend(headers)
        await self.start(status, response_headers)
        await self.body(body)

    async def json(self, status: int, data, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        await self.bytes(status, json.dumps(data).encode(), headers)

    async def error(self, error: OpenAIError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        extra = list(headers or [])
        if error.retry_after is not None:
            extra.append((b"retry-after", str(max(1, round(error.retry_after))).encode()))
        self.ctx.fail(error.status, error.type or error.as_dict()["error"]["type"], error.code)
        await self.bytes(error.status, error.body(), extra)

    async def end_stream_with_error(self, error: OpenAIError) -> None:
        """After the first byte the status cannot change: an error event, then the terminator."""
        ctx = self.ctx
        ctx.error_type = error.type or error.as_dict()["error"]["type"]
        ctx.error_code = "" if error.code is None else str(error.code)
        await self.body(error.sse() + b"data: [DONE]\n\n")
