"""Anthropic error envelopes -> OpenAI errors, keeping the status (``providers.md`` §2.5)."""

from __future__ import annotations

from backends.providers.base import OpenAIError, generic_error, parse_json, retry_after_seconds

# For ``event: error`` inside a 200 stream, where only the type tells what went wrong.
STATUS_FOR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
# OpenAI ``code`` values clients and frameworks branch on.
CODE_FOR_TYPE = {
    "authentication_error": "invalid_api_key",
    "rate_limit_error": "rate_limit_exceeded",
    "overloaded_error": "overloaded",
}


def error(status: int, body: bytes, headers=None) -> OpenAIError:
    try:
        data = parse_json(body)
    except (ValueError, TypeError):
        data = None
    inner = data.get("error") if isinstance(data, dict) else None
    if not isinstance(inner, dict) or not isinstance(inner.get("message"), str) or not inner["message"]:
        return generic_error(status, body, headers)
    return from_inner(status, inner, retry_after_seconds(headers))


def from_inner(status: int, inner: dict, retry_after: float | None = None) -> OpenAIError:
    kind = inner.get("type") if isinstance(inner.get("type"), str) else ""
    message = inner.get("message") if isinstance(inner.get("message"), str) else ""
    message = message or kind or f"Anthropic returned HTTP {status}"
    code = CODE_FOR_TYPE.get(kind)
    if kind == "not_found_error" and message.startswith("model:"):
        code = "model_not_found"
    elif kind == "invalid_request_error" and "prompt is too long" in message:
        code = "context_length_exceeded"
    return OpenAIError(status, message, type=kind, code=code, retry_after=retry_after)


def stream_error(inner) -> OpenAIError:
    """An ``event: error`` received after the 200; its status comes from the error type."""
    if not isinstance(inner, dict):
        inner = {"type": "api_error", "message": "Anthropic reported an error mid-stream"}
    kind = inner.get("type")
    return from_inner(STATUS_FOR_TYPE.get(kind, 500) if isinstance(kind, str) else 500, inner)
