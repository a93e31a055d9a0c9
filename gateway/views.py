"""The gateway's endpoints as lean ASGI handlers: no ORM, no Django request cycle.

Each handler gets the gateway, the request's context and a ``Responder``; the error boundary
around them is in ``gateway.app``. They answer from the in-process routing snapshot.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING

from backends.providers.base import OpenAIError
from gateway import routing
from gateway.asgi_io import RequestRejected, Responder, read_body
from gateway.auth import authenticate
from gateway.proxy import CHAT, EMBEDDINGS, Endpoint, forward

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.pipeline import Gateway


def _invalid(message: str, param: str | None = None) -> RequestRejected:
    return RequestRejected(OpenAIError(400, message, param=param, code="invalid_request"))


def _parse_object(body: bytes) -> dict:
    if not body.strip():
        raise _invalid("The request body is empty; expected a JSON object.")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _invalid(f"The request body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict):
        raise _invalid("The request body must be a JSON object.")
    return payload


def _require_model(payload: dict) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _invalid("you must provide a model parameter", "model")
    if len(model) > 256:
        raise _invalid("'model' is longer than 256 characters", "model")
    return model


def parse_chat(body: bytes) -> tuple[dict, str]:
    payload = _parse_object(body)
    model = _require_model(payload)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("'messages' must be a non-empty array", "messages")
    if "stream" in payload and not isinstance(payload["stream"], bool):
        raise _invalid("'stream' must be a boolean", "stream")
    return payload, model


def parse_embeddings(body: bytes) -> tuple[dict, str]:
    payload = _parse_object(body)
    model = _require_model(payload)
    value = payload.get("input")
    if value is None or value in ("", []):
        raise _invalid("'input' must be a non-empty string or array", "input")
    return payload, model


def method_not_allowed(scope, allowed: str) -> OpenAIError:
    return OpenAIError(405, f"Use {allowed} for {scope['path']}.", code="method_not_allowed")


def allow_header(allowed: str) -> list[tuple[bytes, bytes]]:
    return [(b"allow", allowed.replace(" or ", ", ").encode())]


async def _watch_disconnect(receive, ctx: RequestContext, task: asyncio.Task) -> None:
    """Once the body is read, the next message can only be the client leaving."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            ctx.client_disconnected = True
            task.cancel()
            return


async def _inference(gw: Gateway, ctx: RequestContext, scope, receive, out: Responder, *, parse, endpoint: Endpoint):
    if scope["method"] != "POST":
        await out.error(method_not_allowed(scope, "POST"), allow_header("POST"))
        return
    ctx.principal, denied = authenticate(scope, gw.config.master_key)
    if denied is not None:
        await out.error(denied)
        return
    try:
        body = await read_body(receive, gw.config.max_body_bytes, _content_length(scope))
        payload, ctx.model = parse(body)
    except RequestRejected as rejected:
        await out.error(rejected.error)
        return
    ctx.stream = endpoint is CHAT and payload.get("stream") is True
    watcher = asyncio.create_task(_watch_disconnect(receive, ctx, asyncio.current_task()))
    try:
        async with asyncio.timeout(None if ctx.stream else gw.config.request_timeout):
            await forward(gw, ctx, out, endpoint=endpoint, payload=payload, body=body)
    except TimeoutError:
        timed_out = OpenAIError(
            504,
            f"The request did not complete within {gw.config.request_timeout:g} s.",
            type="timeout",
            code="request_timeout",
        )
        if ctx.attempts and not ctx.attempts[-1].outcome:
            ctx.attempts[-1].outcome, ctx.attempts[-1].reason = "timeout", timed_out.message
        if out.started:
            await out.end_stream_with_error(timed_out)
        else:
            await out.error(timed_out)
    finally:
        watcher.cancel()


def _content_length(scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value
    return None


async def chat_completions(gw, ctx, scope, receive, out) -> None:
    await _inference(gw, ctx, scope, receive, out, parse=parse_chat, endpoint=CHAT)


async def embeddings(gw, ctx, scope, receive, out) -> None:
    await _inference(gw, ctx, scope, receive, out, parse=parse_embeddings, endpoint=EMBEDDINGS)


async def _read_only(gw: Gateway, ctx: RequestContext, scope, out: Responder) -> bool:
    """GET or HEAD, and authenticated; otherwise answered here. True when the caller may go on."""
    if scope["method"] not in ("GET", "HEAD"):
        await out.error(method_not_allowed(scope, "GET or HEAD"), allow_header("GET or HEAD"))
        return False
    ctx.principal, denied = authenticate(scope, gw.config.master_key)
    if denied is not None:
        await out.error(denied)
        return False
    return True


async def models_list(gw, ctx, scope, receive, out) -> None:
    if await _read_only(gw, ctx, scope, out):
        await out.bytes(200, gw.snapshots.current.models_body)


async def model_retrieve(gw, ctx, scope, receive, out, *, model_id: str) -> None:
    if not await _read_only(gw, ctx, scope, out):
        return
    routes = gw.snapshots.current.model_routes.get(model_id)
    if not routes:
        await out.error(
            OpenAIError(404, f"The model `{model_id}` does not exist.", param="model", code="model_not_found")
        )
        return
    await out.json(200, {"id": model_id, "object": "model", "created": 0, "owned_by": routes[0].name})


def health_report(gw: Gateway) -> dict:
    snap = gw.snapshots.current
    breakers = gw.breakers
    enabled = [r for r in snap.backends.values() if r.enabled]
    states = {r.name: routing.backend_state(r, breakers) for r in enabled}
    healthy = {name for name, state in states.items() if state in ("healthy", "unknown")}
    if enabled and len(healthy) == len(enabled):
        status = "healthy"
    elif healthy:
        status = "degraded"
    else:
        status = "unhealthy"
    models_available = sum(1 for routes in snap.model_routes.values() if any(r.name in healthy for r in routes))
    return {
        "status": status,
        "worker_type": "cloud",
        "worker_id": snap.worker_id,
        "backends": {"total": len(enabled), "healthy": len(healthy), "unhealthy": len(enabled) - len(healthy)},
        "models_available": models_available,
        "uptime_seconds": int(time.monotonic() - gw.started_at),
        "requests_in_flight": gw.inflight,
    }


async def health(gw, ctx, scope, receive, out) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        await out.error(method_not_allowed(scope, "GET or HEAD"), allow_header("GET or HEAD"))
        return
    await out.json(200, health_report(gw))


async def readiness(gw, ctx, scope, receive, out) -> None:
    """For load balancers: 503 while starting or draining, so they stop sending first."""
    if scope["method"] not in ("GET", "HEAD"):
        await out.error(method_not_allowed(scope, "GET or HEAD"), allow_header("GET or HEAD"))
        return
    if gw.ready:
        await out.json(200, {"status": "ready"})
    else:
        await out.json(503, {"status": "draining" if gw.draining else "starting"})


async def not_found(gw, ctx, scope, receive, out) -> None:
    await out.error(OpenAIError(404, f"Unknown endpoint {scope['method']} {scope['path']}.", code="unknown_endpoint"))
