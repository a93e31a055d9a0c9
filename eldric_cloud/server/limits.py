"""The server's limits, read once from settings, and the answers it gives when one is crossed."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ServerLimits:
    max_body_bytes: int
    header_timeout: float
    body_idle_timeout: float
    max_connections: int
    linger_seconds: float
    drain_seconds: float
    drain_delay_seconds: float

    @classmethod
    def from_settings(cls) -> ServerLimits:
        return cls(
            max_body_bytes=settings.ELDRIC_MAX_BODY_BYTES,
            header_timeout=settings.ELDRIC_HEADER_TIMEOUT,
            body_idle_timeout=settings.ELDRIC_BODY_IDLE_TIMEOUT,
            max_connections=settings.ELDRIC_MAX_CLIENT_CONNECTIONS,
            linger_seconds=settings.ELDRIC_LINGER_SECONDS,
            drain_seconds=settings.ELDRIC_DRAIN_SECONDS,
            drain_delay_seconds=settings.ELDRIC_DRAIN_DELAY_SECONDS,
        )


REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    413: b"Content Too Large",
    431: b"Request Header Fields Too Large",
}


def error_body(status: int, message: str, code: str | None, *, kind: str | None = None) -> bytes:
    """OpenAI's error shape, as the gateway answers it."""
    kind = kind or ("server_error" if status >= 500 else "invalid_request_error")
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


def too_large_body(limit: int) -> bytes:
    return error_body(413, f"request body exceeds the limit of {limit} bytes", "request_too_large")


def raw_response(status: int, body: bytes) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, written before any application ran."""
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % (
        status,
        REASONS.get(status, b"Error"),
        len(body),
    )
    return head + body
