"""The outermost ASGI application: gateway endpoints first, Django for the rest."""

from __future__ import annotations

from gateway import views
from gateway.http import close_client

ROUTES = {
    "/v1/chat/completions": views.chat_completions,
    "/v1/embeddings": views.embeddings,
    "/v1/models": views.models_list,
    "/health": views.health,
}
MODEL_PREFIX = "/v1/models/"


class GatewayApplication:
    def __init__(self, fallback) -> None:
        self.fallback = fallback

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            handler = ROUTES.get(path) or ROUTES.get(path.rstrip("/"))
            if handler is not None:
                await handler(scope, receive, send)
                return
            if path.startswith(MODEL_PREFIX) and len(path) > len(MODEL_PREFIX):
                await views.model_retrieve(scope, receive, send, path[len(MODEL_PREFIX) :])
                return
            if path.startswith("/v1/"):
                await views.not_found(scope, receive, send)
                return
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        await self.fallback(scope, receive, send)


async def _lifespan(receive, send) -> None:
    # uvicorn sends lifespan events; Daphne does not, and its process exit closes sockets.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await close_client()
            await send({"type": "lifespan.shutdown.complete"})
            return
