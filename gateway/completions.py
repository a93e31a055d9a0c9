"""``POST /v1/completions``: OpenAI's legacy text completions, passed through.

Only OpenAI-compatible backends serve it (``Provider.completions_request``): the client's
bytes go upstream unchanged and the answer, or the stream, comes back unchanged, through the
same routing, failover, limits, usage accounting and error boundary as chat (``gateway.proxy``).
Every other backend kind answers 400 naming itself; nothing is translated.
"""

from __future__ import annotations

from gateway.proxy import Endpoint
from gateway.views import inference, invalid, parse_object, require_model

COMPLETIONS = Endpoint("completions", "completions_request", "completions_response")


def parse_completions(body: bytes) -> tuple[dict, str]:
    payload = parse_object(body)
    model = require_model(payload)
    if not _is_prompt(payload.get("prompt")):
        raise invalid("'prompt' must be a string, an array of strings, or token arrays", "prompt")
    if payload.get("stream") is not None and not isinstance(payload["stream"], bool):
        raise invalid("'stream' must be a boolean", "stream")
    return payload, model


def _is_prompt(value) -> bool:
    """OpenAI's four forms (a string, strings, token ids, arrays of token ids); "" is allowed, as
    OpenAI allows it."""
    if isinstance(value, str):
        return True
    if not isinstance(value, list) or not value:
        return False
    if all(isinstance(item, str) for item in value) or _is_tokens(value):
        return True
    return all(_is_tokens(item) for item in value)


def _is_tokens(value) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


async def completions(gw, ctx, scope, receive, out) -> None:
    await inference(gw, ctx, scope, receive, out, parse=parse_completions, endpoint=COMPLETIONS)
