"""The outermost ASGI application: gateway endpoints first, Django for the rest.

Every gateway endpoint runs inside one error boundary. Whatever a handler fails with, the
client gets an answer in OpenAI's shape: a 500 naming the request id when nothing was sent
yet (the traceback goes to the log), or an error event and ``[DONE]`` when a stream had
started. A client that leaves, or a shutdown that ends the request, is handled here too.
"""

from __future__ import annotations

import asyncio
import logging

from backends.providers.base import OpenAIError
from gateway import completions, messages_view, responses_view, usage_views, views
from gateway.asgi_io import Responder, header
from gateway.pipeline import Gateway

logger = logging.getLogger(__name__)

# path -> (handler, dialect)
ROUTES = {
    "/v1/chat/completions": (views.chat_completions, "openai.chat"),
    "/v1/embeddings": (views.embeddings, "openai.embeddings"),
    "/v1/completions": (completions.completions, "openai.completions"),
    "/v1/models": (views.models_list, "openai.models"),
    "/v1/usage": (usage_views.usage_self, "eldric.usage"),
    "/v1/responses": (responses_view.responses, "openai.responses"),
    "/v1/messages": (messages_view.messages, "anthropic.messages"),
    "/v1/messages/count_tokens": (messages_view.count_tokens, "anthropic.messages"),
    "/health": (views.health, "health"),
    "/health/ready": (views.readiness, "health"),
}
# The dialects whose answers are not OpenAI's: their responder speaks the client's protocol,
# so everything the error boundary sends (a 500, a shutdown's 503) is in that protocol too.
RESPONDERS = {
    "anthropic.messages": messages_view.AnthropicResponder,
    # Errors are OpenAI's shape, but a stream that fails must end in Responses events.
    "openai.responses": responses_view.ResponsesResponder,
}
MODEL_PREFIX = "/v1/models/"
SHUTTING_DOWN = OpenAIError(
    503, "The server is shutting down; retry the request.", type="service_unavailable", code="server_shutting_down"
)


class GatewayApplication:
    def __init__(self, gateway: Gateway, fallback, *, start_on_lifespan: bool = True) -> None:
        self.gateway = gateway
        self.fallback = fallback
        self.start_on_lifespan = start_on_lifespan

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            found = ROUTES.get(path) or ROUTES.get(path.rstrip("/"))
            if found is not None:
                await self.serve(found[0], found[1], scope, receive, send)
                return
            if path.startswith(MODEL_PREFIX) and len(path) > len(MODEL_PREFIX):
                model_id = path[len(MODEL_PREFIX) :]
                await self.serve(views.model_retrieve, "openai.models", scope, receive, send, model_id=model_id)
                return
            if path.startswith("/v1/"):
                await self.serve(views.not_found, "openai", scope, receive, send)
                return
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.fallback(scope, receive, send)

    async def serve(self, handler, dialect: str, scope, receive, send, **extra) -> None:
        gateway = self.gateway
        ctx = gateway.begin(scope, dialect, header(scope, b"x-request-id"))
        out = RESPONDERS.get(dialect, Responder)(send, ctx, close_connection=gateway.draining)
        try:
            await handler(gateway, ctx, scope, receive, out, **extra)
        except asyncio.CancelledError:
            if not (ctx.client_disconnected or ctx.aborted):
                raise
            # Cancelled on purpose: by the client leaving, or by the gateway shutting down.
            asyncio.current_task().uncancel()
            if ctx.aborted:
                await _answer_safely(out, SHUTTING_DOWN)
            else:
                logger.info("client left request %s (%s)", ctx.request_id, ctx.backend or "no backend yet")
        except Exception:
            logger.exception("internal error in request %s (%s %s)", ctx.request_id, scope["method"], scope["path"])
            await _answer_safely(
                out,
                OpenAIError(
                    500,
                    f"The gateway failed to handle this request (request id {ctx.request_id}).",
                    type="server_error",
                    code="internal_error",
                ),
            )
        finally:
            gateway.finish(ctx)

    async def _lifespan(self, receive, send) -> None:
        # uvicorn sends lifespan events; Daphne does not (eldric-cloudd starts the gateway itself).
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.start_on_lifespan:
                    # The first snapshot is read from the database: not on the event loop.
                    await asyncio.to_thread(self.gateway.start)
                self.gateway.serving_started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.gateway.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _answer_safely(out: Responder, error: OpenAIError) -> None:
    """The last answer a failed request gets, whatever state its response is in."""
    try:
        if not out.started:
            await out.error(error)
        elif out.streaming and not out.ended:
            await out.end_stream_with_error(error)
        elif not out.ended:
            await out.body(b"")
    except Exception:  # the client is gone, or the server refuses to send: nothing more to do
        logger.debug("could not send the final answer for request %s", out.ctx.request_id, exc_info=True)
