"""The gateway's endpoints as lean ASGI handlers: no ORM, no Django request cycle.

They answer from the in-process routing snapshot. Everything else (management API, admin,
dashboard) is served by Django behind them.
"""

from __future__ import annotations

import json
import time

from backends.providers.base import OpenAIError
from gateway import snapshot as snapshots
from gateway.asgi_io import RequestRejected, read_body, send_bytes, send_error, send_json
from gateway.auth import authenticate
from gateway.config import config
from gateway.failures import board
from gateway.proxy import CHAT, EMBEDDINGS, forward

STARTED = time.monotonic()


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


async def _inference(scope, receive, send, parse, endpoint) -> None:
    if scope["method"] != "POST":
        await send_error(send, OpenAIError(405, f"Use POST for {scope['path']}.", code="method_not_allowed"))
        return
    denied = authenticate(scope)
    if denied is not None:
        await send_error(send, denied)
        return
    try:
        body = await read_body(scope, receive, config().max_body_bytes)
        payload, model = parse(body)
    except RequestRejected as rejected:
        await send_error(send, rejected.error)
        return
    await forward(
        scope, receive, send, snapshot=snapshots.current(), endpoint=endpoint, model=model, payload=payload, body=body
    )


async def chat_completions(scope, receive, send) -> None:
    await _inference(scope, receive, send, parse_chat, CHAT)


async def embeddings(scope, receive, send) -> None:
    await _inference(scope, receive, send, parse_embeddings, EMBEDDINGS)


async def _reject_non_get(scope, send) -> bool:
    if scope["method"] in ("GET", "HEAD"):
        return False
    await send_error(send, OpenAIError(405, f"Use GET for {scope['path']}.", code="method_not_allowed"))
    return True


async def models_list(scope, receive, send) -> None:
    if await _reject_non_get(scope, send):
        return
    denied = authenticate(scope)
    if denied is not None:
        await send_error(send, denied)
        return
    await send_bytes(send, 200, snapshots.current().models_body)


async def model_retrieve(scope, receive, send, model_id: str) -> None:
    if await _reject_non_get(scope, send):
        return
    denied = authenticate(scope)
    if denied is not None:
        await send_error(send, denied)
        return
    snap = snapshots.current()
    routes = snap.model_routes.get(model_id)
    if not routes:
        await send_error(
            send, OpenAIError(404, f"The model `{model_id}` does not exist.", param="model", code="model_not_found")
        )
        return
    await send_json(send, 200, {"id": model_id, "object": "model", "created": 0, "owned_by": routes[0].name})


def health_report(snap, breakers) -> dict:
    enabled = [r for r in snap.backends.values() if r.enabled]
    healthy = {r.name for r in enabled if not r.probe_excluded and breakers.state(r.name, r.healthy_since) == "closed"}
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
        "uptime_seconds": int(time.monotonic() - STARTED),
    }


async def health(scope, receive, send) -> None:
    await send_json(send, 200, health_report(snapshots.current(), board()))


async def not_found(scope, receive, send) -> None:
    await send_error(
        send, OpenAIError(404, f"Unknown endpoint {scope['method']} {scope['path']}.", code="unknown_endpoint")
    )
