"""What the ingresses that are not chat (``/v1/messages``, ``/v1/responses``) share: reading an
authenticated body in their own error shape, and handing a translated body to the chat pipeline
(``views.inference``) as if the client had sent it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from backends.providers.base import OpenAIError
from gateway.asgi_io import RequestRejected, Responder, header, read_body
from gateway.proxy import CHAT
from gateway.views import allow_header, authenticate_request, inference, method_not_allowed, parse_chat

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.pipeline import Gateway

# A 2xx chat answer the ingress could not translate back: not what the backend claimed.
UNREADABLE_ANSWER = OpenAIError(502, "the backend's answer could not be read", type="api_error", code="invalid_answer")


async def read_authenticated(gw: Gateway, ctx: RequestContext, scope, receive, out: Responder):
    """The request body once the method and the key are right; None when already answered."""
    if scope["method"] != "POST":
        await out.error(method_not_allowed(scope, "POST"), allow_header("POST"))
        return None
    ctx.principal, _, denied = authenticate_request(gw, scope)
    if denied is not None:
        await out.error(denied)
        return None
    try:
        return await read_body(receive, gw.config.max_body_bytes, header(scope, b"content-length"))
    except RequestRejected as rejected:
        await out.error(rejected.error)
        return None


def without_content_length(scope) -> dict:
    """The scope for the translated body, whose length is not the client's."""
    headers = [(name, value) for name, value in scope["headers"] if name != b"content-length"]
    return {**scope, "headers": headers}


def replaying(body: bytes, receive):
    """A ``receive`` that delivers ``body`` first, then whatever the client sends (its disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def serve_as_chat(gw: Gateway, ctx: RequestContext, scope, receive, out: Responder, *, chat: dict) -> None:
    """Run the translated ``chat`` request through the chat pipeline (``views.inference``):
    authentication, allow-lists, limits, routing, failover and accounting, unchanged. ``out``
    translates the answer back."""
    body = json.dumps(chat, ensure_ascii=False).encode()
    await inference(
        gw, ctx, without_content_length(scope), replaying(body, receive), out, parse=parse_chat, endpoint=CHAT
    )
