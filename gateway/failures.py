"""Classifying transport failures, worded for clients: the backend's name, never its address."""

from __future__ import annotations

import asyncio
import errno

import httpx

from backends.providers.base import OpenAIError
from backends.snapshot import BackendRoute
from gateway.context import CONNECT_ERROR, TIMEOUT

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EPIPE: "connection closed",
}


def transport_error(route: BackendRoute, exc: httpx.HTTPError) -> OpenAIError:
    if is_timeout(exc):
        return OpenAIError(504, f"backend {route.name} timed out", type="timeout", code="upstream_timeout")
    return OpenAIError(
        502, f"cannot reach backend {route.name}: {describe(exc)}", type="api_error", code="upstream_unreachable"
    )


def outcome_of(exc: httpx.HTTPError) -> str:
    return TIMEOUT if is_timeout(exc) else CONNECT_ERROR


def is_timeout(exc: BaseException) -> bool:
    # httpx-aiohttp reports refused connections as ConnectTimeout; the cause tells the truth.
    cause = exc.__cause__
    if cause is not None and type(cause).__name__ in ("ClientConnectorError", "ClientConnectorDNSError"):
        return False
    if cause is not None and type(cause).__name__ in ("ServerDisconnectedError", "ClientOSError"):
        return False
    return isinstance(exc, httpx.TimeoutException) or isinstance(cause, (TimeoutError, asyncio.TimeoutError))


def describe(exc: BaseException) -> str:
    """A few words for what went wrong. Library messages name the host and port (an internal
    address, for a self-hosted upstream), so they are never passed on as they are."""
    seen = exc
    for _ in range(5):
        if seen is None:
            break
        name = type(seen).__name__
        if "DNS" in name or (isinstance(seen, OSError) and seen.errno in (-2, -3, -5)):
            return "name resolution failed"
        if "SSL" in name or "Certificate" in name:
            return "TLS handshake failed"
        if isinstance(seen, OSError) and seen.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[seen.errno]
        if name in ("ServerDisconnectedError", "RemoteProtocolError"):
            return "the connection closed before a complete answer"
        if name in ("ClientPayloadError", "ReadError"):
            return "the answer was cut short"
        if name == "DecodingError":
            return "the answer's compression is broken"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.ConnectError) or type(exc.__cause__).__name__ == "ClientConnectorError":
        return "connection failed"
    return "transport error"
