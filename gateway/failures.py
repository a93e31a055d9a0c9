"""Passive health bookkeeping shared by forwarding and streaming: the breaker board and the
classification of transport failures."""

from __future__ import annotations

import asyncio

import httpx

from backends.providers.base import OpenAIError
from backends.snapshot import BackendRoute
from gateway.breaker import BreakerBoard
from gateway.config import config

_board: BreakerBoard | None = None


def board() -> BreakerBoard:
    global _board  # noqa: PLW0603 - one board per process, built lazily from settings
    if _board is None:
        cfg = config()
        _board = BreakerBoard(failure_threshold=cfg.breaker_failures, cooldown=cfg.breaker_cooldown)
    return _board


def transport_error(route: BackendRoute, exc: httpx.HTTPError) -> OpenAIError:
    if is_timeout(exc):
        return OpenAIError(504, f"backend {route.name} timed out", type="timeout", code="upstream_timeout")
    return OpenAIError(
        502, f"cannot reach backend {route.name}: {describe(exc)}", type="api_error", code="upstream_unreachable"
    )


def is_timeout(exc: BaseException) -> bool:
    # httpx-aiohttp reports refused connections as ConnectTimeout; the cause tells the truth.
    cause = exc.__cause__
    if cause is not None and type(cause).__name__ in ("ClientConnectorError", "ClientConnectorDNSError"):
        return False
    if cause is not None and type(cause).__name__ in ("ServerDisconnectedError", "ClientOSError"):
        return False
    return isinstance(exc, httpx.TimeoutException) or isinstance(cause, (TimeoutError, asyncio.TimeoutError))


def describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    text = str(cause) or type(cause).__name__
    return text[:200]
