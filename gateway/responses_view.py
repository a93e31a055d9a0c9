"""``POST /v1/responses``: OpenAI's Responses API as an ingress.

Built like ``/v1/messages`` (``gateway.messages_view``): the request is validated, translated
to an OpenAI chat request (``gateway.dialects.openai_responses_request``), and the chat handler
``views.inference`` runs on it unchanged (authentication, allow-lists, limits, routing,
failover, streaming relay, accounting). A ``ResponsesResponder`` around the client's
``Responder`` turns what the pipeline writes (a ``chat.completion``, chunk frames) into a
``response`` and Responses events. Errors are OpenAI's shape already.

To a backend marked ``responses_api`` (OpenAI and xAI by default) the client's bytes go to
``{url}/responses`` unchanged and the answer comes back untouched: the proxy asks the responder
for a ``native_provider`` per attempt, so a failover between kinds switches per attempt.

``previous_response_id`` is resolved from the gateway's store (``responses_store``) for the
backends that do not keep responses themselves; a translated answer is stored (unless the
client sent ``store: false``) so the next turn can continue it.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from backends.providers.base import InvalidRequestError, OpenAIError, ProviderError, parse_json
from gateway import routing
from gateway.asgi_io import JSON, RequestRejected, Responder
from gateway.dialects.anthropic_messages import DroppedFieldLog
from gateway.dialects.openai_responses_answer import ResponseShell, from_chat_completion
from gateway.dialects.openai_responses_native import ResponsesNative
from gateway.dialects.openai_responses_request import (
    ResponsesRequestError,
    history_of,
    input_items,
    native_body,
    to_openai_chat,
    validate_responses,
)
from gateway.dialects.openai_responses_stream import ChatToResponsesStream
from gateway.ingress import UNREADABLE_ANSWER, read_authenticated, serve_as_chat
from gateway.views import parse_object

if TYPE_CHECKING:
    from gateway.context import RequestContext
    from gateway.pipeline import Gateway
    from responses_store.store import ResponseStore

logger = logging.getLogger(__name__)

# Sent upstream in place of a request the translation refused, when a Responses backend may
# still take the client's own: it only has to pass the chat parser.
PLACEHOLDER_MESSAGES = [{"role": "user", "content": ""}]
STREAM_ERROR_EVENT = b"event: error\ndata: "


def speaks_responses(route) -> bool:
    return route.kind == "openai_compatible" and getattr(route, "responses_api", False)


class _Refusing:
    """The adapter for an attempt that cannot be made: its backend would need a translation
    the request does not allow. The proxy answers its ``InvalidRequestError`` with a 400 that
    keeps the refusal's message, ``param`` and ``code``."""

    passthrough = False
    reads_own_usage = False

    def __init__(self, refusal: OpenAIError) -> None:
        self.refusal = refusal

    def chat_request(self, route, payload: dict, body: bytes):
        refusal = self.refusal
        raise InvalidRequestError(refusal.message, refusal.param, code=refusal.code or "invalid_request")


class ResponsesResponder(Responder):
    """A ``Responder`` that speaks the Responses API: what the chat pipeline writes in chat's
    shape reaches the client as a ``response`` and its events. ``passthrough`` is set per
    attempt, when the attempt goes to a backend that serves ``/responses`` itself."""

    def __init__(self, send, ctx: RequestContext, *, close_connection: bool = False) -> None:
        super().__init__(send, ctx, close_connection=close_connection)
        self.passthrough = False
        self.shell: ResponseShell | None = None
        # The body for a Responses backend; None while the request is not the ingress's yet.
        self.native_body: bytes | None = None
        # Why a translated attempt cannot be made (None: it can).
        self.refusal: OpenAIError | None = None
        # Called with the output items of a translated answer that completed.
        self.on_output = None
        self._translator: ChatToResponsesStream | None = None

    def native_provider(self, route):
        self.passthrough = self.native_body is not None and speaks_responses(route)
        if self.passthrough:
            return ResponsesNative(self.native_body)
        return _Refusing(self.refusal) if self.refusal is not None else None

    async def bytes(
        self, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None, content_type: bytes = JSON
    ) -> None:
        if status < 300 and not self.passthrough and self.shell is not None:
            try:
                response = from_chat_completion(parse_json(body), self.shell)
            except (ProviderError, ValueError, TypeError):
                await self.error(UNREADABLE_ANSWER)
                return
            self._stored(response["output"])
            body = json.dumps(response, ensure_ascii=False).encode()
        await Responder.bytes(self, status, body, headers, content_type)

    async def body(self, data: bytes, *, more: bool = False) -> None:
        if not self.streaming or self.passthrough or self.shell is None:
            await super().body(data, more=more)
            return
        translator = self._stream()
        frames = translator.feed(data) if data else []
        if not more:
            frames += translator.close()
            if translator.completed:
                self._stored(translator.output)
        await super().body(b"".join(frames), more=more)

    async def end_stream_with_error(self, error: OpenAIError) -> None:
        ctx = self.ctx
        ctx.error_type = error.type or error.as_dict()["error"]["type"]
        ctx.error_code = "" if error.code is None else str(error.code)
        if self.passthrough or self.shell is None:
            inner = error.as_dict()["error"]
            event = {"type": "error", "code": inner["code"], "message": inner["message"], "param": inner["param"]}
            await super().body(STREAM_ERROR_EVENT + json.dumps(event).encode() + b"\n\n")
            return
        await super().body(b"".join(self._stream().error(error)))

    def _stream(self) -> ChatToResponsesStream:
        if self._translator is None:
            self._translator = ChatToResponsesStream(self.shell)
        return self._translator

    def _stored(self, output: list) -> None:
        if self.on_output is not None:
            hook, self.on_output = self.on_output, None
            hook(output)


class ResponsesIngress:
    """The handler, with the state it keeps: the store (None when off) and which dropped fields
    were already logged. Built once with the gateway (``Gateway.responses``)."""

    def __init__(self, store: ResponseStore | None = None, dropped_log: DroppedFieldLog | None = None) -> None:
        self.store = store
        self.dropped_log = dropped_log or DroppedFieldLog(ingress="responses", protocol="Responses")

    async def create(self, gw: Gateway, ctx: RequestContext, scope, receive, answer: ResponsesResponder) -> None:
        body = await read_authenticated(gw, ctx, scope, receive, answer)
        if body is None:
            return
        try:
            payload = parse_object(body)
            model = validate_responses(payload)
        except RequestRejected as rejected:
            await answer.error(rejected.error)
            return
        except ResponsesRequestError as refused:
            await answer.error(refusal_error(refused))
            return
        ctx.model = model
        organisation = ctx.principal.organisation or "default"
        history: list = []
        answer.native_body = body
        refusal = None
        previous = payload.get("previous_response_id")
        if previous:
            history, refusal = await self._history(previous, organisation)
            if history:
                answer.native_body = native_body(payload, history)
        dropped: set[str] = set()
        chat = None
        if refusal is None:
            try:
                chat = to_openai_chat(payload, history, dropped)
            except ResponsesRequestError as refused:
                refusal = refusal_error(refused)
        if refusal is not None:
            # Only a backend that serves the Responses API itself may still take the request.
            plan = routing.plan(gw.routing_for(ctx), model, gw.breakers)
            if not any(speaks_responses(route) for route in plan.candidates):
                await answer.error(refusal)
                return
            answer.refusal = refusal
            chat = {"model": model, "messages": PLACEHOLDER_MESSAGES, "stream": payload.get("stream") is True}
        answer.shell = ResponseShell(payload)
        store = self.store
        if store is not None and store.enabled and payload.get("store") is not False:
            answer.on_output = _saver(store, answer.shell.id, organisation, model, history + input_items(payload))
        try:
            await serve_as_chat(gw, ctx, scope, receive, answer, chat=chat)
        finally:
            if dropped and ctx.backend and not answer.passthrough:
                self.dropped_log.note(ctx.backend, dropped)

    async def _history(self, previous: str, organisation: str) -> tuple[list, OpenAIError | None]:
        """The earlier turns ``previous`` names, or why a translated backend cannot continue it."""
        store = self.store
        if store is None or not store.enabled:
            return [], OpenAIError(
                400,
                "'previous_response_id' needs the gateway's response store, which is off "
                "(ELDRIC_RESPONSES_STORE_DAYS=0); send the whole conversation as 'input' instead.",
                param="previous_response_id",
                code="responses_store_disabled",
            )
        try:
            stored = await store.get(previous, organisation)
        except Exception as exc:  # the database is away: the request can still go where ids are kept
            logger.warning("responses store: cannot read a stored response (%s)", type(exc).__name__)
            return [], OpenAIError(
                503,
                "The gateway's response store cannot be read right now; retry, or send the whole conversation.",
                type="service_unavailable",
                param="previous_response_id",
                code="responses_store_unavailable",
            )
        if stored is None:
            return [], OpenAIError(
                400,
                f"Previous response with id '{previous[:100]}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return history_of(stored), None


def refusal_error(refused: ResponsesRequestError) -> OpenAIError:
    return OpenAIError(400, str(refused), param=refused.param, code="invalid_request")


def _saver(store: ResponseStore, response_id: str, organisation: str, model: str, inputs: list):
    def save(output: list) -> None:
        store.save(
            response_id=response_id, organisation=organisation, model=model, input_items=inputs, output_items=output
        )

    return save


# The routed handler: the ingress, with its state, is the gateway's (``Gateway.responses``).
async def responses(gw: Gateway, ctx: RequestContext, scope, receive, out: Responder) -> None:
    await gw.responses.create(gw, ctx, scope, receive, out)
