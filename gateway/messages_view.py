"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's Messages API as an ingress.

Not routed yet (``gateway.app.ROUTES`` is the lead's). How it works today, without changing
the chat pipeline: the Anthropic request is validated and translated to an OpenAI chat request
(``gateway.dialects.anthropic_messages``), and the chat handler ``views.inference`` runs on it
unchanged (authentication, model allow-lists, limits, routing, failover, streaming relay,
accounting); an ``AnthropicResponder`` around the client's ``Responder`` turns everything that
pipeline writes (answers, stream frames, errors) into Anthropic's shapes on the way out.

To a ``type: anthropic`` backend the client's bytes go upstream unchanged, and the answer comes
back untouched: the proxy asks the responder for a ``native_provider`` for each backend it tries
(``backends.providers.anthropic.native``), so a failover between kinds switches per attempt.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import httpx

from backends.providers.anthropic import anthropic_headers
from backends.providers.anthropic.native import AnthropicNative
from backends.providers.base import OpenAIError, ProviderError, parse_json
from backends.redaction import redact
from gateway import routing
from gateway.asgi_io import JSON, Responder
from gateway.auth import model_forbidden
from gateway.dialects.anthropic_messages import (
    DroppedFieldLog,
    MessagesRequestError,
    OpenAIToAnthropicStream,
    anthropic_error,
    count_tokens_estimate,
    from_openai_completion,
    parse_messages,
    to_openai_chat,
)
from gateway.http import ResponseTooLarge, read_bounded
from gateway.ingress import UNREADABLE_ANSWER, read_authenticated, serve_as_chat
from gateway.views import authenticate_request

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.pipeline import Gateway

logger = logging.getLogger(__name__)


class AnthropicResponder(Responder):
    """A ``Responder`` that speaks Anthropic: what the chat pipeline writes in OpenAI's shape
    (a ``chat.completion``, chunk frames, error envelopes) reaches the client as a ``message``,
    Messages events and ``{"type":"error",...}``.

    ``passthrough`` is set, per attempt, when the attempt goes to an Anthropic backend with the
    client's own bytes: then answers and streams go out as they came.
    """

    def __init__(self, send, ctx: RequestContext, *, close_connection: bool = False) -> None:
        super().__init__(send, ctx, close_connection=close_connection)
        self.requested_model = ""
        self.passthrough = False
        # The client's own Messages request, for a backend that speaks Anthropic.
        self.client_body: bytes | None = None
        self._translator: OpenAIToAnthropicStream | None = None

    def native_provider(self, route) -> AnthropicNative | None:
        """Called by the proxy for each backend it tries: the adapter that sends the client's
        request as it came, or None to go through the OpenAI form."""
        self.passthrough = route.kind == "anthropic" and self.client_body is not None
        return AnthropicNative(self.client_body) if self.passthrough else None

    async def error(self, error: OpenAIError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        extra = list(headers or [])
        if error.retry_after is not None:
            extra.append((b"retry-after", str(max(1, round(error.retry_after))).encode()))
        self.ctx.fail(error.status, error.type or error.as_dict()["error"]["type"], error.code)
        await self._raw_bytes(error.status, anthropic_error(error.status, error), extra)

    async def bytes(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None, content_type: bytes = JSON
    ) -> None:
        if status < 300 and not self.passthrough:
            try:
                message = from_openai_completion(parse_json(body), self.requested_model)
            except (ProviderError, ValueError, TypeError):
                await self.error(UNREADABLE_ANSWER)
                return
            body = json.dumps(message, ensure_ascii=False).encode()
        await self._raw_bytes(status, body, headers, content_type)

    async def _raw_bytes(self, status, body: bytes, headers, content_type: bytes = JSON) -> None:
        await Responder.bytes(self, status, body, headers, content_type)

    async def body(self, data: bytes, *, more: bool = False) -> None:
        if not self.streaming or self.passthrough:
            await super().body(data, more=more)
            return
        translator = self._stream()
        frames = translator.feed(data) if data else []
        if not more:
            frames += translator.close()
        await super().body(b"".join(frames), more=more)

    async def end_stream_with_error(self, error: OpenAIError) -> None:
        ctx = self.ctx
        ctx.error_type = error.type or error.as_dict()["error"]["type"]
        ctx.error_code = "" if error.code is None else str(error.code)
        if self.passthrough:
            await super().body(b"event: error\ndata: " + anthropic_error(error.status, error) + b"\n\n")
            return
        await super().body(b"".join(self._stream().error(error)))

    def _stream(self) -> OpenAIToAnthropicStream:
        if self._translator is None:
            self._translator = OpenAIToAnthropicStream(self.requested_model)
        return self._translator


class MessagesIngress:
    """The handlers, with the state they keep: which dropped fields were already logged.

    Built once with the gateway (``MessagesIngress()``) and its two methods routed.
    """

    def __init__(self, dropped_log: DroppedFieldLog | None = None) -> None:
        self.dropped_log = dropped_log or DroppedFieldLog()

    # The app builds an ``AnthropicResponder`` for these routes (``gateway.app.RESPONDERS``),
    # so its error boundary answers in Anthropic's shape too.
    async def messages(self, gw: Gateway, ctx: RequestContext, scope, receive, answer: AnthropicResponder) -> None:
        body = await read_authenticated(gw, ctx, scope, receive, answer)
        if body is None:
            return
        try:
            payload, model = parse_messages(body)
            dropped: set[str] = set()
            chat = to_openai_chat(payload, dropped)
        except MessagesRequestError as refused:
            await answer.error(OpenAIError(400, str(refused), param=refused.param, code="invalid_request"))
            return
        answer.requested_model = model
        answer.client_body = body
        try:
            await serve_as_chat(gw, ctx, scope, receive, answer, chat=chat)
        finally:
            # The backend is chosen inside the proxy: known once it answered (or last failed).
            if dropped and ctx.backend:
                self.dropped_log.note(ctx.backend, dropped)

    async def count_tokens(self, gw: Gateway, ctx: RequestContext, scope, receive, answer: AnthropicResponder) -> None:
        body = await read_authenticated(gw, ctx, scope, receive, answer)
        if body is None:
            return
        try:
            payload, ctx.model = parse_messages(body, count_tokens=True)
        except MessagesRequestError as refused:
            await answer.error(OpenAIError(400, str(refused), param=refused.param, code="invalid_request"))
            return
        _, key, _ = authenticate_request(gw, scope)
        forbidden = model_forbidden(key, ctx.model)
        if forbidden is not None:
            await answer.error(forbidden)
            return
        # Counting is for a chat: an embedding model is refused here as in messages.create.
        plan = routing.plan(gw.routing_for(ctx), ctx.model, gw.breakers, endpoint="chat")
        if plan.error is not None:
            await answer.error(plan.error)
            return
        route = plan.candidates[0] if plan.candidates else None
        if route is not None and route.kind == "anthropic":
            await _count_upstream(gw, ctx, route, body, answer)
            return
        answer.passthrough = True  # the estimate is already in Anthropic's shape
        await answer.json(200, {"input_tokens": count_tokens_estimate(payload)})


async def _count_upstream(gw: Gateway, ctx: RequestContext, route, body: bytes, out: AnthropicResponder) -> None:
    """One attempt, no failover: a count is cheap to retry and not worth a backend's breaker."""
    ctx.backend = route.name
    clients = gw.clients
    try:
        upstream = await clients.send("POST", f"{route.url}/messages/count_tokens", anthropic_headers(route), body)
        answer = await read_bounded(upstream, gw.config.max_response_bytes)
    except (httpx.HTTPError, ResponseTooLarge) as exc:
        logger.warning("backend %s: count_tokens failed: %s", route.name, type(exc).__name__)
        await out.error(OpenAIError(502, f"backend {route.name} did not give a token count", type="api_error"))
        return
    out.passthrough = True
    content_type = upstream.headers.get("content-type", "application/json").encode("latin-1", "replace")
    if route.api_key and route.api_key.encode() in answer:  # an upstream echoing the key must not leak it
        answer = redact(answer.decode("utf-8", "replace"), route.api_key).encode()
    await out.bytes(upstream.status_code, answer, None, content_type)


# The routed handlers: the ingress, with its state, is the gateway's (``Gateway.messages``).
async def messages(gw: Gateway, ctx: RequestContext, scope, receive, out: Responder) -> None:
    await gw.messages.messages(gw, ctx, scope, receive, out)


async def count_tokens(gw: Gateway, ctx: RequestContext, scope, receive, out: Responder) -> None:
    await gw.messages.count_tokens(gw, ctx, scope, receive, out)
