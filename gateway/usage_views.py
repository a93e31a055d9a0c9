"""``GET /v1/usage``: a client key reads its own usage, its budget and what remains."""

from __future__ import annotations

from backends.providers.base import OpenAIError


async def usage_self(gw, ctx, scope, receive, out) -> None:
    await out.error(OpenAIError(404, "Not implemented yet.", code="unknown_endpoint"))
