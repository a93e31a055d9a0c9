"""Forwarding with failover before the first byte, and streaming relay after it.

Failover policy: until anything has reached the client, a connect error, timeout, 5xx or
429 moves on to the next backend that serves the model (best priority first, at most
``ELDRIC_MAX_ATTEMPTS``). Client errors (400, 401, 404, 413, 422, content-policy
refusals) are returned as they are. Once bytes have gone out, an upstream failure ends the
stream with an OpenAI-shaped error event and ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from backends.providers import provider_for
from backends.providers.base import SSE_DONE, OpenAIError, ProviderError, UpstreamRequest
from backends.redaction import redact
from backends.snapshot import BackendRoute
from gateway import routing
from gateway.asgi_io import send_bytes, send_error
from gateway.breaker import BreakerBoard
from gateway.config import config
from gateway.http import client

logger = logging.getLogger(__name__)

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
# Upstream response headers worth passing on to clients (request ids and rate limits).
FORWARDED_HEADER_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-")
FORWARDED_HEADERS = frozenset({b"x-request-id", b"request-id", b"openai-processing-ms"})

# 429 rate limited; 529 Anthropic overloaded.
OVERLOADED = frozenset({429, 529})

_board: BreakerBoard | None = None
# Parsed upstream URLs: there are a few per backend, and parsing one costs about 4% of a request.
_urls: dict[str, httpx.URL] = {}
_URL_CACHE_SIZE = 1024


def _parsed_url(url: str) -> httpx.URL:
    parsed = _urls.get(url)
    if parsed is None:
        if len(_urls) >= _URL_CACHE_SIZE:
            _urls.clear()
        parsed = _urls[url] = httpx.URL(url)
    return parsed


def board() -> BreakerBoard:
    global _board  # noqa: PLW0603 - one board per process, built lazily from settings
    if _board is None:
        cfg = config()
        _board = BreakerBoard(failure_threshold=cfg.breaker_failures, cooldown=cfg.breaker_cooldown)
    return _board


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What differs between chat completions and embeddings."""

    name: str
    build: str  # adapter method that builds the upstream request
    translate: str  # adapter method that translates a complete answer


CHAT = Endpoint("chat", "chat_request", "chat_response")
EMBEDDINGS = Endpoint("embeddings", "embeddings_request", "embeddings_response")


class _Retryable(Exception):
    def __init__(self, error: OpenAIError, *, health_failure: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.health_failure = health_failure


def _forwarded_headers(upstream: httpx.Response, route: BackendRoute) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-eldric-backend", route.name.encode())]
    for name, value in upstream.headers.raw:
        lowered = name.lower()
        if lowered in FORWARDED_HEADERS or lowered.startswith(FORWARDED_HEADER_PREFIXES):
            headers.append((lowered, value))
    return headers


async def _open(route: BackendRoute, request: UpstreamRequest) -> httpx.Response:
    """Send upstream and classify every failure that allows trying the next backend."""
    http = client()
    try:
        upstream = await http.send(
            http.build_request(
                request.method, _parsed_url(request.url), headers=request.headers, content=request.content
            ),
            stream=True,
        )
    except httpx.HTTPError as exc:
        raise _Retryable(_transport_error(route, exc), health_failure=True) from None
    status = upstream.status_code
    if status < 400:
        return upstream
    try:
        body = await upstream.aread()
    except httpx.HTTPError as exc:
        raise _Retryable(_transport_error(route, exc), health_failure=True) from None
    finally:
        await upstream.aclose()
    error = provider_for(route.kind).error(status, body, upstream.headers)
    error = OpenAIError(
        error.status, redact(error.message, route.api_key), error.type, error.param, error.code, error.retry_after
    )
    if status in OVERLOADED:
        # Busy, not broken: try elsewhere, and stay away as long as the provider asks.
        if error.retry_after:
            board().block(route.name, error.retry_after)
        raise _Retryable(error, health_failure=False)
    if status >= 500 or status == 408:
        raise _Retryable(error, health_failure=True)
    board().record_neutral(route.name)
    raise _Final(error)


class _Final(Exception):
    def __init__(self, error: OpenAIError) -> None:
        super().__init__(error.message)
        self.error = error


def _transport_error(route: BackendRoute, exc: httpx.HTTPError) -> OpenAIError:
    if _is_timeout(exc):
        return OpenAIError(504, f"backend {route.name} timed out", type="timeout", code="upstream_timeout")
    return OpenAIError(
        502, f"cannot reach backend {route.name}: {_describe(exc)}", type="api_error", code="upstream_unreachable"
    )


def _is_timeout(exc: BaseException) -> bool:
    # httpx-aiohttp reports refused connections as ConnectTimeout; the cause tells the truth.
    cause = exc.__cause__
    if cause is not None and type(cause).__name__ in ("ClientConnectorError", "ClientConnectorDNSError"):
        return False
    if cause is not None and type(cause).__name__ in ("ServerDisconnectedError", "ClientOSError"):
        return False
    return isinstance(exc, httpx.TimeoutException) or isinstance(cause, (TimeoutError, asyncio.TimeoutError))


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    text = str(cause) or type(cause).__name__
    return text[:200]


async def forward(
    scope, receive, send, *, snapshot, endpoint: Endpoint, model: str, payload: dict, body: bytes
) -> None:
    breakers = board()
    route_plan = routing.plan(snapshot, model, breakers)
    if route_plan.error is not None:
        await send_error(send, route_plan.error)
        return
    stream = endpoint is CHAT and payload.get("stream") is True
    last_error: OpenAIError | None = None
    attempts = 0
    for route in route_plan.candidates:
        if attempts >= config().max_attempts:
            break
        if not breakers.acquire(route.name, route.healthy_since):
            continue
        attempts += 1
        provider = provider_for(route.kind)
        try:
            request = getattr(provider, endpoint.build)(route, payload, body)
        except ProviderError as exc:
            breakers.record_neutral(route.name)
            await send_error(send, OpenAIError(400, str(exc)), [(b"x-eldric-backend", route.name.encode())])
            return
        try:
            upstream = await _open(route, request)
            if not stream:
                answer = await _read_whole(route, upstream)
        except _Retryable as failure:
            last_error = failure.error
            if failure.health_failure and breakers.record_failure(route.name):
                logger.warning("backend %s: circuit opened after repeated failures", route.name)
            elif not failure.health_failure:
                breakers.record_neutral(route.name)
            breakers.count_failover(route.name)
            logger.warning(
                "backend %s failed for %s (%s); trying the next backend", route.name, model, failure.error.message
            )
            continue
        except _Final as final:
            await send_error(send, final.error, [(b"x-eldric-backend", route.name.encode())])
            return
        breakers.record_success(route.name)
        headers = _forwarded_headers(upstream, route)
        if stream:
            await relay_stream(
                receive, send, route=route, provider=provider, payload=payload, upstream=upstream, headers=headers
            )
        else:
            if not provider.passthrough:
                try:
                    answer = getattr(provider, endpoint.translate)(payload, answer)
                except ProviderError as exc:
                    error = OpenAIError(502, f"backend {route.name}: {exc}", type="api_error", code="upstream_error")
                    await send_error(send, error, headers)
                    return
            await send_bytes(send, upstream.status_code, answer, headers)
        return
    if last_error is None:
        states = ", ".join(f"{r.name}: {routing.backend_state(r, breakers)}" for r in route_plan.candidates)
        last_error = OpenAIError(
            503,
            f"No backend could take the request for `{model}` ({states}).",
            type="service_unavailable",
            code="no_healthy_backend",
        )
    await send_error(send, last_error)


async def _read_whole(route: BackendRoute, upstream: httpx.Response) -> bytes:
    try:
        return await upstream.aread()
    except httpx.HTTPError as exc:
        raise _Retryable(_transport_error(route, exc), health_failure=True) from None
    finally:
        await upstream.aclose()


async def relay_stream(receive, send, *, route, provider, payload, upstream: httpx.Response, headers) -> None:
    """Forward the stream as it arrives; close upstream at once if the client goes away."""
    task = asyncio.current_task()
    disconnected = asyncio.Event()

    async def watch_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
                task.cancel()
                return

    watcher = asyncio.create_task(watch_disconnect())
    translator = provider.stream_translator(route, payload)
    tail = b""
    upstream_error = False
    try:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
        try:
            async for chunk in upstream.aiter_raw():
                if translator is None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    tail = (tail + chunk)[-64:]
                    # Groq and others report failures as an error event after a 200.
                    upstream_error = upstream_error or b'"error":' in chunk
                else:
                    for frame in translator.feed(chunk):
                        await send({"type": "http.response.body", "body": frame, "more_body": True})
        except httpx.HTTPError as exc:
            error = _transport_error(route, exc)
            board().record_failure(route.name)
            logger.warning("backend %s failed mid-stream: %s", route.name, error.message)
            await _end_stream_with_error(
                send,
                OpenAIError(
                    502,
                    f"backend {route.name} failed mid-stream: {error.message}",
                    type="api_error",
                    code="upstream_stream_error",
                ),
            )
            return
        if translator is not None:
            for frame in translator.close():
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        elif upstream_error and not tail.rstrip().endswith(b"[DONE]"):
            # The upstream already sent an OpenAI-shaped error event; only the terminator is missing.
            await send({"type": "http.response.body", "body": SSE_DONE, "more_body": False})
            return
        elif not tail.rstrip().endswith(b"[DONE]"):
            logger.warning("backend %s ended the stream without [DONE]", route.name)
            await _end_stream_with_error(
                send,
                OpenAIError(
                    502, f"backend {route.name} ended the stream early", type="api_error", code="upstream_stream_error"
                ),
            )
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not disconnected.is_set():
            raise
        # The client went away: this task was cancelled on purpose, so finish quietly.
        task.uncancel()
        logger.info("client disconnected from a %s stream; upstream closed", route.name)
    finally:
        watcher.cancel()
        await upstream.aclose()


async def _end_stream_with_error(send, error: OpenAIError) -> None:
    await send({"type": "http.response.body", "body": error.sse() + SSE_DONE, "more_body": False})
