"""Forwarding with failover before the first byte; the relay after it is in ``gateway.streaming``.

Failover policy: until anything has reached the client, a connect error, timeout, 5xx or
429 moves on to the next backend that serves the model (best priority first, at most
``ELDRIC_MAX_ATTEMPTS``). Client errors (400, 401, 404, 413, 422, content-policy
refusals) are returned as they are. Once bytes have gone out, an upstream failure ends the
stream with an OpenAI-shaped error event and ``data: [DONE]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx

from backends.providers import provider_for
from backends.providers.base import OpenAIError, ProviderError, UpstreamRequest
from backends.redaction import redact
from backends.snapshot import BackendRoute
from gateway import routing
from gateway.asgi_io import send_bytes, send_error
from gateway.config import config
from gateway.failures import board, transport_error
from gateway.http import client
from gateway.streaming import relay_stream

logger = logging.getLogger(__name__)

# Upstream response headers worth passing on to clients (request ids and rate limits).
FORWARDED_HEADER_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-")
FORWARDED_HEADERS = frozenset({b"x-request-id", b"request-id", b"openai-processing-ms"})

# 429 rate limited; 529 Anthropic overloaded.
OVERLOADED = frozenset({429, 529})

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
        raise _Retryable(transport_error(route, exc), health_failure=True) from None
    status = upstream.status_code
    if status < 300:
        return upstream
    if status < 400:
        # Redirects are not followed: a key must never be replayed to another host. The
        # backend's URL is wrong, which the operator has to fix.
        await upstream.aclose()
        location = upstream.headers.get("location", "elsewhere")
        raise _Retryable(
            OpenAIError(502, f"backend {route.name} redirected to {location}; check its URL", code="upstream_redirect"),
            health_failure=True,
        )
    try:
        body = await upstream.aread()
    except httpx.HTTPError as exc:
        raise _Retryable(transport_error(route, exc), health_failure=True) from None
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
        raise _Retryable(transport_error(route, exc), health_failure=True) from None
    finally:
        await upstream.aclose()
