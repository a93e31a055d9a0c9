"""The gateway's endpoints as lean ASGI handlers: no ORM, no Django request cycle.

Each handler gets the gateway, the request's context and a ``Responder``; the error boundary
around them is in ``gateway.app``. They answer from the in-process routing snapshot.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from functools import partial
from typing import TYPE_CHECKING

from backends import capabilities
from backends.providers.base import OpenAIError
from gateway import model_lookup, routing
from gateway.asgi_io import RequestRejected, Responder, accepts_gzip, header, read_body
from gateway.auth import authenticate, model_forbidden
from gateway.limits import estimate_tokens
from gateway.proxy import CHAT, EMBEDDINGS, Endpoint, forward
from orgs.licenses import license_health

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.pipeline import Gateway


def invalid(message: str, param: str | None = None) -> RequestRejected:
    return RequestRejected(OpenAIError(400, message, param=param, code="invalid_request"))


def parse_object(body: bytes) -> dict:
    """The body as a JSON object, or a 400 that names the field at fault where there is one.

    The checks the whole request needs are here, before any backend is chosen, because a
    pass-through backend forwards the client's bytes as they are: JSON on the wire is UTF-8
    (RFC 8259 §8.1) and a lone UTF-16 surrogate escape is not Unicode, so neither may reach an
    upstream; NaN and Infinity are not JSON at all, though Python's parser reads them.
    """
    if not body.strip():
        raise invalid("The request body is empty; expected a JSON object.")
    bad_bytes_at = None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Decoded anyway, each bad byte as a lone surrogate, so the field holding it can be named.
        bad_bytes_at = exc.start
        text = body.decode("utf-8", "surrogateescape")
    constants: list[str] = []
    try:
        payload = json.loads(text, parse_constant=lambda name: constants.append(name) or float(name))
    except (ValueError, RecursionError) as exc:
        if bad_bytes_at is not None:
            raise invalid(f"The request body is not valid JSON: not UTF-8 (byte {bad_bytes_at}).") from None
        raise invalid(f"The request body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict):
        raise invalid("The request body must be a JSON object.")
    if bad_bytes_at is not None or _SURROGATE_ESCAPE.search(text):
        path = _first_path(payload, _unencodable)
        if path is not None or bad_bytes_at is not None:
            what = "is not valid UTF-8" if bad_bytes_at is not None else "contains a lone UTF-16 surrogate"
            raise invalid(f"'{path or 'a top-level key'}' {what}.", path or None)
    if constants:
        path = _first_path(payload, _non_finite)
        raise invalid(f"'{path or 'the request'}' is {constants[0]}, which is not valid JSON.", path or None)
    return payload


# A \ud800-\udbff escape not followed by a \udc00-\udfff one, or the other way round: the only way a
# lone surrogate gets into text that decoded as UTF-8. A pair (how many clients escape an emoji)
# does not match, so only a request that holds a lone one pays for the walk.
_SURROGATE_ESCAPE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F]"
)


def _unencodable(value) -> bool:
    if not isinstance(value, str) or value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _non_finite(value) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def _first_path(payload: dict, bad) -> str | None:
    """The path (OpenAI's notation: ``messages[1].content``) of the first value, or key, for
    which ``bad`` is true, in document order; "" for a top-level key. Iterative: the payload
    may be nested deeper than Python's recursion limit."""
    stack: list[tuple[str, object]] = [("", payload)]
    while stack:
        path, value = stack.pop()
        if bad(value):
            return path
        if isinstance(value, dict):
            children = []
            for key, child in value.items():
                if bad(key):
                    return path
                children.append((f"{path}.{key}" if path else key, child))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", child) for index, child in reversed(list(enumerate(value))))
    return None


def require_model(payload: dict) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model.strip():
        raise invalid("you must provide a model parameter", "model")
    if len(model) > 256:
        raise invalid("'model' is longer than 256 characters", "model")
    return model


def parse_chat(body: bytes) -> tuple[dict, str]:
    payload = parse_object(body)
    model = require_model(payload)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty array", "messages")
    # Null is what OpenAI's schema allows for "not sent".
    if payload.get("stream") is not None and not isinstance(payload["stream"], bool):
        raise invalid("'stream' must be a boolean", "stream")
    return payload, model


def parse_embeddings(body: bytes) -> tuple[dict, str]:
    payload = parse_object(body)
    model = require_model(payload)
    if not _is_embeddings_input(payload.get("input")):
        raise invalid("'input' must be a non-empty string, array of strings, or array of token arrays", "input")
    return payload, model


def _is_embeddings_input(value) -> bool:
    """OpenAI's four forms: a string, strings, token ids, arrays of token ids."""
    if isinstance(value, str):
        return bool(value)
    if not isinstance(value, list) or not value:
        return False
    if all(isinstance(item, str) for item in value):
        return True
    return all(_is_tokens(item) for item in value) or _is_tokens(value)


def _is_tokens(value) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


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


async def inference(gw: Gateway, ctx: RequestContext, scope, receive, out: Responder, *, parse, endpoint: Endpoint):
    if scope["method"] != "POST":
        await out.error(method_not_allowed(scope, "POST"), allow_header("POST"))
        return
    ctx.principal, key, denied = authenticate_request(gw, scope)
    if denied is not None:
        await out.error(denied)
        return
    limiter = gw.limiter
    scopes = limiter.scopes_for(key, gw.snapshots.access.organisation(ctx.principal.organisation))
    try:
        body = await read_body(receive, gw.config.max_body_bytes, header(scope, b"content-length"))
        payload, ctx.model = parse(body)
    except RequestRejected as rejected:
        await out.error(rejected.error, limiter.known_headers(scopes) if scopes else None)
        return
    forbidden = model_forbidden(key, ctx.model)
    if forbidden is not None:
        await out.error(forbidden, limiter.known_headers(scopes) if scopes else None)
        return
    # Chat and /v1/completions stream; embeddings never do.
    ctx.stream = endpoint is not EMBEDDINGS and payload.get("stream") is True
    if scopes:
        refused, out.extra_headers = await limiter.acquire(ctx, scopes, estimate_tokens(payload, body))
        if refused is not None:
            await out.error(refused)
            return
        if limiter.charges_before_end(ctx):
            out.before_end = partial(limiter.release_before_end, ctx)
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


async def chat_completions(gw, ctx, scope, receive, out) -> None:
    await inference(gw, ctx, scope, receive, out, parse=parse_chat, endpoint=CHAT)


async def embeddings(gw, ctx, scope, receive, out) -> None:
    await inference(gw, ctx, scope, receive, out, parse=parse_embeddings, endpoint=EMBEDDINGS)


def authenticate_request(gw: Gateway, scope):
    """``(principal, key record or None, error or None)`` for a /v1 request, from the access
    snapshot and the gateway's settings."""
    return authenticate(scope, gw.config.master_key, gw.snapshots.access, require_key=gw.config.require_client_key)


async def read_only(gw: Gateway, ctx: RequestContext, scope, out: Responder):
    """GET or HEAD, and authenticated; otherwise answered here. ``(True, key record)`` when the
    caller may go on."""
    if scope["method"] not in ("GET", "HEAD"):
        await out.error(method_not_allowed(scope, "GET or HEAD"), allow_header("GET or HEAD"))
        return False, None
    ctx.principal, key, denied = authenticate_request(gw, scope)
    if denied is not None:
        await out.error(denied)
        return False, None
    return True, key


async def models_list(gw, ctx, scope, receive, out) -> None:
    allowed, key = await read_only(gw, ctx, scope, out)
    if allowed:
        routing = gw.routing_for(ctx)
        body = await gw.models_body_for(routing, key.models) if key is not None else routing.models_body
        await out.bytes(200, *await compressed_if_accepted(gw, scope, body))


async def compressed_if_accepted(gw: Gateway, scope, body: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """A large body gzipped for a client that accepts it (a 100k-model catalogue is 11 MB, about
    400 KB gzipped); ``Vary`` either way, so a cache keeps the two apart."""
    if not gw.listings.worth_gzip(body):
        return body, []
    if not accepts_gzip(header(scope, b"accept-encoding")):
        return body, [(b"vary", b"accept-encoding")]
    return await gw.listings.gzipped(body), [(b"content-encoding", b"gzip"), (b"vary", b"accept-encoding")]


async def model_retrieve(gw, ctx, scope, receive, out, *, model_id: str) -> None:
    allowed, key = await read_only(gw, ctx, scope, out)
    if not allowed:
        return
    if model_forbidden(key, model_id) is not None or not model_lookup.plausible_id(model_id):
        await out.error(model_lookup.not_found(model_id))
        return
    snapshot = gw.routing_for(ctx)
    routes = snapshot.model_routes.get(model_id)
    if routes:
        created = snapshot.model_created.get(model_id) or 0
        said = snapshot.model_capabilities.get(model_id) or (capabilities.UNKNOWN,)
        await out.json(
            200,
            {
                "id": model_id,
                "object": "model",
                "created": created,
                "owned_by": routes[0].name,
                "capabilities": capabilities.listed(said[0]),
            },
        )
        return
    # Not listed: as chat would, ask the default backend.
    model, error = await model_lookup.model_from_default(gw, ctx, snapshot, model_id)
    if error is not None:
        await out.error(error)
    else:
        await out.json(200, model)


CONTROLLER_OFF = {"configured": False, "state": "disabled"}


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
        "license": license_health(gw.snapshots.access),
        "limits": gw.limiter.health(),
        "controller": CONTROLLER_OFF if gw.controller is None else gw.controller.controller_health(),
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
