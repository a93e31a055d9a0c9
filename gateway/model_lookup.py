"""``GET /v1/models/{id}`` for a model no backend lists: asked of the default backend.

Chat sends a model no backend lists to the default backend unchanged (``routing.plan``), so
retrieving it does the same: the default backend's adapter builds its own single-model request
(OpenAI ``GET /models/{id}``, Anthropic ``GET /v1/models/{id}``, Cohere ``GET /v1/models/{name}``,
Ollama ``POST /api/show``), and the answer is given in OpenAI's model shape. A 404 upstream is a
404 ``model_not_found`` here; any other failure is the upstream's error in OpenAI's shape, with
the backend key and address redacted. The answer is read up to ``ELDRIC_MAX_RESPONSE_BYTES``
and within ``ELDRIC_REQUEST_TIMEOUT``.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import httpx

from backends import capabilities
from backends.providers import provider_for
from backends.providers.base import OpenAIError, ProviderError
from gateway import routing
from gateway.failures import transport_error
from gateway.http import ResponseTooLarge, read_bounded
from gateway.redaction import redacted_error

if TYPE_CHECKING:
    from backends.snapshot import RoutingSnapshot
    from gateway.context import RequestContext
    from gateway.pipeline import Gateway

# As ``model`` in a chat request (``views.require_model``).
MAX_MODEL_ID = 256


def not_found(model_id: str) -> OpenAIError:
    return OpenAIError(404, f"The model `{model_id}` does not exist.", param="model", code="model_not_found")


def plausible_id(model_id: str) -> bool:
    """Whether ``model_id`` may go into an upstream URL path: at most 256 printable characters
    that encode to UTF-8 (as chat's ``model``), and no empty, ``.`` or ``..`` segment, which
    would make the request reach another path of the backend, with its key."""
    if not model_id or len(model_id) > MAX_MODEL_ID or not model_id.isprintable():
        return False
    return all(segment not in ("", ".", "..") for segment in model_id.split("/"))


async def model_from_default(gw: Gateway, ctx: RequestContext, snapshot: RoutingSnapshot, model_id: str):
    """``(model object, None)`` from the backend chat would use for ``model_id``, or
    ``(None, error)``."""
    plan = routing.plan(snapshot, model_id, gw.breakers)
    if plan.error is not None:
        return None, plan.error
    route = plan.candidates[0]
    ctx.backend = route.name
    provider = provider_for(route.kind)
    try:
        request = provider.model_request(route, model_id)
    except ProviderError as exc:
        return None, OpenAIError(400, str(exc), param="model", code="invalid_request")
    clients = gw.clients
    try:
        async with asyncio.timeout(gw.config.request_timeout):
            upstream = await clients.send(request.method, request.url, request.headers, request.content)
            try:
                body = await read_bounded(upstream, gw.config.max_response_bytes)
            finally:
                await upstream.aclose()
    except TimeoutError:
        return None, OpenAIError(504, f"backend {route.name} timed out", type="timeout", code="upstream_timeout")
    except ResponseTooLarge:
        return None, _invalid_answer(route.name)
    except httpx.HTTPError as exc:
        return None, transport_error(route, exc)
    status = upstream.status_code
    if status == 404:
        return None, not_found(model_id)
    if 300 <= status < 400:
        # Not followed: the key must never be replayed to another host.
        return None, OpenAIError(502, f"backend {route.name} redirected; check its URL", code="upstream_redirect")
    if status >= 400:
        error = provider.error(status, body, upstream.headers)
        return None, redacted_error(error, route.api_key, upstream.url.netloc.decode())
    try:
        info = provider.parse_model(route, body)
    except (ValueError, ProviderError):
        return None, _invalid_answer(route.name)
    # No creation time upstream (Cohere): the time the gateway first heard of it, which is now.
    created = info.created or int(time.time())
    model = {"id": model_id, "object": "model", "created": created, "owned_by": route.name}
    return {**model, "capabilities": capabilities.listed(info.capability)}, None


def _invalid_answer(backend: str) -> OpenAIError:
    return OpenAIError(
        502, f"backend {backend} did not answer with a model", type="api_error", code="upstream_invalid_response"
    )
