"""Minimal ASGI request/response helpers for the gateway's own endpoints."""

from __future__ import annotations

import json

from backends.providers.base import OpenAIError

JSON = b"application/json"


class RequestRejected(Exception):
    def __init__(self, error: OpenAIError) -> None:
        super().__init__(error.message)
        self.error = error


async def read_body(scope, receive, limit: int) -> bytes:
    """The whole request body, refused with 413 as soon as it passes ``limit``."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                raise RequestRejected(OpenAIError(400, "invalid Content-Length header")) from None
            if declared > limit:
                raise RequestRejected(_too_large(limit))
            break
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


async def send_bytes(
    send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None, content_type: bytes = JSON
) -> None:
    response_headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        response_headers.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send, status: int, data, headers=None) -> None:
    await send_bytes(send, status, json.dumps(data).encode(), headers)


async def send_error(send, error: OpenAIError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    extra = list(headers or [])
    if error.retry_after is not None:
        extra.append((b"retry-after", str(max(1, round(error.retry_after))).encode()))
    await send_bytes(send, error.status, error.body(), extra)
