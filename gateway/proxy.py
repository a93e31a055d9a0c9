"""Forwarding with failover before the first byte; the relay after it is in ``gateway.streaming``.

Failover policy: until anything has reached the client, a connect error, timeout, 5xx, 429,
a redirect or a 2xx that is not what it claims moves on to the next backend that serves the
model (best priority first, at most ``ELDRIC_MAX_ATTEMPTS``). Client errors (400, 401, 404,
413, 422, content-policy refusals) are returned as they are. Once bytes have gone out, an
upstream failure ends the stream with an OpenAI-shaped error event and ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from backends.providers import provider_for
from backends.providers.base import OpenAIError, Provider, ProviderError, UpstreamRequest
from backends.providers.openai_compatible import flavour_for
from backends.redaction import redact
from backends.snapshot import BackendRoute
from gateway import context as outcomes
from gateway import routing
from gateway.asgi_io import Responder
from gateway.context import Attempt, RequestContext, Usage
from gateway.failures import outcome_of, transport_error
from gateway.http import ResponseTooLarge, read_bounded
from gateway.redaction import redacted_error, safe_headers
from gateway.streaming import relay_stream
from gateway.usage import NotJSON, stream_usage_body, usage_from_body

if TYPE_CHECKING:
    from gateway.pipeline import Gateway
    from gateway.upstream import UpstreamResponse

logger = logging.getLogger(__name__)

# 429 rate limited; 529 Anthropic overloaded.
OVERLOADED = frozenset({429, 529})
# Upstreams known to reject ``stream_options`` (providers.md §5).
NO_STREAM_OPTIONS = frozenset({"mistral"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What differs between chat completions and embeddings."""

    name: str
    build: str  # adapter method that builds the upstream request
    translate: str  # adapter method that translates a complete answer


CHAT = Endpoint("chat", "chat_request", "chat_response")
EMBEDDINGS = Endpoint("embeddings", "embeddings_request", "embeddings_response")


class _Retryable(Exception):
    def __init__(self, error: OpenAIError, outcome: str, *, health_failure: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.outcome = outcome
        self.health_failure = health_failure


class _Final(Exception):
    def __init__(self, error: OpenAIError, outcome: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.outcome = outcome


async def forward(
    gw: Gateway, ctx: RequestContext, out: Responder, *, endpoint: Endpoint, payload: dict, body: bytes
) -> None:
    breakers = gw.breakers
    # Every ingress (chat, /v1/messages, /v1/responses, completions, embeddings) comes through
    # here, so each refuses a model listed only as something its endpoint cannot use.
    route_plan = routing.plan(gw.routing_for(ctx), ctx.model, breakers, endpoint=endpoint.name)
    ctx.model_known = route_plan.model_known
    if route_plan.error is not None:
        await out.error(route_plan.error)
        return
    last_error: OpenAIError | None = None
    tried = 0
    for route in route_plan.candidates:
        if tried >= gw.config.max_attempts:
            break
        if route_plan.trial:
            lease = breakers.acquire_trial(route.name)
        else:
            lease = breakers.acquire(route.name, route.healthy_probes)
        if lease is None:
            continue
        tried += 1
        attempt = ctx.attempt(route.name)
        try:
            await _try(gw, ctx, out, route, attempt, endpoint=endpoint, payload=payload, body=body)
        except _Retryable as failure:
            _record_retryable(gw, ctx, route, attempt, failure)
            last_error = failure.error
            continue
        finally:
            if not attempt.ended:
                attempt.ended = time.monotonic()
            lease.release()
        if route_plan.trial and attempt.outcome == outcomes.OK:
            logger.info("backend %s answered again; routable before its next probe", route.name)
            breakers.mark_recovered(route.name, route)
        return
    if last_error is None:
        states = ", ".join(f"{r.name}: {routing.backend_state(r, breakers)}" for r in route_plan.candidates)
        last_error = OpenAIError(
            503,
            f"No backend could take the request for `{ctx.model}` ({states}).",
            type="service_unavailable",
            code="no_healthy_backend",
        )
    await out.error(last_error)


def _record_retryable(gw: Gateway, ctx: RequestContext, route: BackendRoute, attempt: Attempt, failure) -> None:
    breakers = gw.breakers
    attempt.outcome = failure.outcome
    attempt.status = failure.error.status
    attempt.reason = failure.error.message
    if failure.health_failure and breakers.record_failure(route.name, route.healthy_probes):
        logger.warning("backend %s: circuit opened after repeated failures", route.name)
    breakers.count_failover(route.name)
    logger.warning("backend %s failed for %s (%s); trying the next backend", route.name, ctx.model, attempt.reason)


async def _try(
    gw: Gateway,
    ctx: RequestContext,
    out: Responder,
    route: BackendRoute,
    attempt: Attempt,
    *,
    endpoint: Endpoint,
    payload: dict,
    body: bytes,
) -> None:
    """One backend. Returns once the client has its answer; raises ``_Retryable`` when the
    next backend may try."""
    provider = provider_for(route.kind)
    # An ingress that speaks this backend's own protocol (``/v1/messages`` to an Anthropic
    # backend) sends the client's request as it came instead of the OpenAI form.
    provider = out.native_provider(route) or provider
    ctx.backend = route.name
    try:
        request = getattr(provider, endpoint.build)(route, payload, body)
    except ProviderError as exc:
        attempt.outcome = outcomes.REJECTED
        attempt.reason = str(exc)
        code = getattr(exc, "code", "invalid_request")
        await out.error(OpenAIError(400, str(exc), param=getattr(exc, "param", None), code=code))
        return
    strip_usage = False
    if ctx.stream and provider.passthrough and flavour_for(route.name, route.url) not in NO_STREAM_OPTIONS:
        with_usage = stream_usage_body(payload, request.content or b"")
        if with_usage is not None:
            request = UpstreamRequest(request.method, request.url, request.headers, with_usage)
            strip_usage = True
    try:
        upstream = await _open(gw, route, request, provider, stream=ctx.stream)
    except _Final as final:
        attempt.outcome = final.outcome
        attempt.status = final.error.status
        attempt.reason = final.error.message
        gw.breakers.record_neutral(route.name)
        await out.error(final.error)
        return
    attempt.status = upstream.status_code
    headers = safe_headers(upstream.raw_headers, route.api_key)
    if ctx.stream:
        gw.breakers.record_success(route.name)
        attempt.outcome = outcomes.OK
        attempt.ended = time.monotonic()
        await relay_stream(
            gw, ctx, out, route=route, provider=provider, payload=payload, upstream=upstream, headers=headers,
            strip_usage=strip_usage,
        )  # fmt: skip
        return
    answer = await _read_whole(gw, route, upstream)
    attempt.ended = ctx.first_upstream_byte = time.monotonic()
    if not provider.passthrough:
        try:
            answer = getattr(provider, endpoint.translate)(payload, answer)
        except ProviderError as exc:
            raise _Retryable(
                OpenAIError(
                    502,
                    redact(f"backend {route.name}: {exc}", route.api_key),
                    type="api_error",
                    code="upstream_invalid_response",
                ),
                outcomes.TRANSLATE_ERROR,
                health_failure=True,
            ) from None
    try:
        ctx.usage = _usage_of(provider, answer)
    except NotJSON as exc:
        raise _Retryable(
            OpenAIError(
                502,
                f"backend {route.name} answered HTTP {upstream.status_code} but {exc}",
                type="api_error",
                code="upstream_invalid_response",
            ),
            outcomes.INVALID_RESPONSE,
            health_failure=True,
        ) from None
    gw.breakers.record_success(route.name)
    attempt.outcome = outcomes.OK
    await out.bytes(upstream.status_code, answer, headers)


def _usage_of(provider: Provider, answer: bytes) -> Usage | None:
    """The answer's usage: an adapter that relays its backend's own protocol reads it itself."""
    if not provider.reads_own_usage:
        return usage_from_body(answer)
    try:
        return Usage.from_openai(provider.answer_usage(answer))
    except ValueError:
        raise NotJSON("the answer is not a JSON object") from None


async def _open(
    gw: Gateway, route: BackendRoute, request: UpstreamRequest, provider: Provider, *, stream: bool = False
) -> UpstreamResponse:
    """Send upstream and classify every failure that allows trying the next backend."""
    if not stream:
        return await _answered(gw, route, request, provider, stream=False)
    # A stream's request has no per-read timeout (its relay keeps an idle deadline once the
    # body flows): one timer bounds the wait for its headers, or for its error answer.
    try:
        async with asyncio.timeout(gw.config.read_timeout):
            return await _answered(gw, route, request, provider, stream=True)
    except TimeoutError:
        exc = httpx.ReadTimeout(f"no answer within {gw.config.read_timeout:g} s")
        raise _Retryable(transport_error(route, exc), outcome_of(exc), health_failure=True) from None


async def _answered(
    gw: Gateway, route: BackendRoute, request: UpstreamRequest, provider: Provider, *, stream: bool
) -> UpstreamResponse:
    try:
        upstream = await gw.clients.send(request.method, request.url, request.headers, request.content, stream=stream)
    except httpx.HTTPError as exc:
        raise _Retryable(transport_error(route, exc), outcome_of(exc), health_failure=True) from None
    status = upstream.status_code
    if status < 300:
        return upstream
    if status < 400:
        # Redirects are not followed: a key must never be replayed to another host. The
        # backend's URL is wrong, which the operator has to fix.
        await upstream.aclose()
        raise _Retryable(
            OpenAIError(502, f"backend {route.name} redirected; check its URL", code="upstream_redirect"),
            outcomes.REDIRECT,
            health_failure=True,
        )
    body = await _read_whole(gw, route, upstream, limit=1024 * 1024)
    error = redacted_error(provider.error(status, body, upstream.headers), route.api_key, upstream.url.netloc.decode())
    if error.retry_after is not None and error.retry_after > gw.config.retry_after_max:
        error = dataclasses.replace(error, retry_after=gw.config.retry_after_max)
    if status in OVERLOADED:
        # Busy, not broken: try elsewhere, and stay away as long as the provider asks.
        if error.retry_after:
            gw.breakers.block(route.name, error.retry_after)
        raise _Retryable(error, outcomes.RATE_LIMITED, health_failure=False)
    if status >= 500 or status == 408:
        raise _Retryable(error, outcomes.UPSTREAM_ERROR, health_failure=True)
    raise _Final(error, outcomes.CLIENT_ERROR)


async def _read_whole(gw: Gateway, route: BackendRoute, upstream: UpstreamResponse, limit: int = 0) -> bytes:
    """The whole answer, bounded: an upstream cannot make the gateway hold more than the limit."""
    limit = limit or gw.config.max_response_bytes
    try:
        return await read_bounded(upstream, limit)
    except ResponseTooLarge:
        raise _too_large(route, limit) from None
    except httpx.HTTPError as exc:
        raise _Retryable(transport_error(route, exc), outcome_of(exc), health_failure=True) from None


def _too_large(route: BackendRoute, limit: int) -> _Retryable:
    return _Retryable(
        OpenAIError(
            502,
            f"backend {route.name} sent an answer larger than {limit} bytes",
            type="api_error",
            code="upstream_response_too_large",
        ),
        outcomes.INVALID_RESPONSE,
        health_failure=False,
    )
