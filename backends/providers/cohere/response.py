"""Cohere v2 answers -> OpenAI: chat completion, finish reasons, usage, errors, models, embeddings."""

from __future__ import annotations

import logging

from backends import capabilities
from backends.providers import shapes
from backends.providers.base import (
    ModelInfo,
    OpenAIError,
    ProviderError,
    clean_text,
    generic_error,
    parse_json,
    retry_after_seconds,
)
from backends.providers.content import model_items, upstream_name

logger = logging.getLogger(__name__)

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",
    # Cohere ended generation on its side; OpenAI has no closer reason.
    "TIMEOUT": "stop",
}
# Cohere error_type values with an OpenAI code clients already recognise.
ERROR_CODES = {"TOO_MANY_TOKENS": "context_length_exceeded"}


class CohereGenerationError(ProviderError):
    """Cohere reported finish_reason ERROR: the answer is not usable."""


def finish_reason(value, *, has_tool_calls: bool) -> str:
    """Map Cohere's finish reason; ERROR raises because it is a failure, not a reason to stop."""
    if value == "ERROR":
        raise CohereGenerationError("Cohere stopped with finish_reason ERROR")
    if has_tool_calls:
        return "tool_calls"
    mapped = FINISH_REASONS.get(value or "COMPLETE") if isinstance(value, (str, type(None))) else None
    if mapped is None:
        logger.warning("cohere: unknown finish_reason %r mapped to stop", clean_text(repr(value))[:100])
        return "stop"
    return mapped


def usage(data) -> dict:
    """OpenAI usage from Cohere's ``usage.tokens`` (falling back to ``billed_units``); ``cached_tokens``
    becomes ``prompt_tokens_details.cached_tokens``. Cohere reports no reasoning-token count."""
    data = data if isinstance(data, dict) else {}
    counts = data.get("tokens")
    if not isinstance(counts, dict) or not counts:
        counts = data.get("billed_units")
    counts = counts if isinstance(counts, dict) else {}
    cached = data.get("cached_tokens")
    return shapes.usage(
        shapes.count(counts.get("input_tokens")),
        shapes.count(counts.get("output_tokens")),
        shapes.count(cached) if cached is not None else None,
    )


def chat_completion(payload: dict, body: bytes) -> bytes:
    try:
        data = parse_json(body)
    except (ValueError, TypeError):
        raise ProviderError("Cohere answered with something that is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise ProviderError("Cohere's answer has no 'message'")
    message = data["message"]
    texts, thoughts = [], []
    content = message.get("content")
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            texts.append(_text(part.get("text")))
        elif part.get("type") == "thinking":
            thoughts.append(_text(part.get("thinking")))
    if isinstance(content, str):
        texts.append(content)
    if _text(message.get("tool_plan")):
        thoughts.append(message["tool_plan"])
    calls = message.get("tool_calls")
    tool_calls = [_tool_call(call) for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []
    out = shapes.assistant_message("".join(texts), tool_calls, "\n\n".join(thoughts))
    answer_id = data.get("id")
    return shapes.completion(
        id=f"chatcmpl-{answer_id if isinstance(answer_id, str) and answer_id else 'cohere'}",
        model=_text(payload.get("model")),
        message=out,
        finish_reason=finish_reason(data.get("finish_reason"), has_tool_calls=bool(tool_calls)),
        usage=usage(data.get("usage")),
    )


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _tool_call(call: dict) -> dict:
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    arguments = function.get("arguments")
    if isinstance(arguments, (dict, list)):
        arguments = shapes.dumps(arguments).decode()
    return {
        "id": _text(call.get("id")),
        "type": "function",
        "function": {"name": _text(function.get("name")), "arguments": _text(arguments) or "{}"},
    }


def error(status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
    """Cohere's flat ``{"id", "message", "error_type"?}`` -> OpenAI's envelope, status kept."""
    try:
        data = parse_json(body)
    except (ValueError, TypeError):
        return generic_error(status, body, headers)
    if not isinstance(data, dict) or not isinstance(data.get("message"), str) or not data["message"]:
        return generic_error(status, body, headers)
    message = data["message"]
    error_type = data.get("error_type") if isinstance(data.get("error_type"), str) else ""
    code = ERROR_CODES.get(error_type)
    if code is None and status == 401:
        code = "invalid_api_key"
    if code is None and error_type:
        code = error_type.lower()
    return OpenAIError(status, message, code=code, retry_after=retry_after_seconds(headers))


# Cohere's ``endpoints`` (``types/compatible_endpoint.py``) -> capability, strongest first: a
# model that chats also ``generate``s, one that embeds also ``classify``s.
ENDPOINT_CAPABILITIES = (
    ("chat", capabilities.CHAT),
    ("embed", capabilities.EMBEDDING),
    ("rerank", capabilities.RERANK),
    ("generate", capabilities.COMPLETION),
)


def models(body: bytes) -> tuple[list[ModelInfo], str | None]:
    """Chat, embedding, rerank and generate models from ``GET /v1/models``, and the next page
    token. Models with none of those endpoints (``classify`` or ``summarize`` only) are left out."""
    data, items = model_items(body, "models")
    found = []
    for item in items:
        if not isinstance(item, dict) or not upstream_name(item.get("name")):
            continue
        capability = model_capability(item)
        if capability:
            found.append(ModelInfo(item["name"], capability=capability))
    return found, upstream_name(data.get("next_page_token"))


def model_capability(item: dict) -> str:
    """The capability Cohere's ``endpoints`` list says, or ``UNKNOWN``."""
    endpoints = item.get("endpoints")
    endpoints = endpoints if isinstance(endpoints, list) else []
    for endpoint, capability in ENDPOINT_CAPABILITIES:
        if endpoint in endpoints:
            return capability
    return capabilities.UNKNOWN


def embeddings(payload: dict, body: bytes) -> bytes:
    try:
        data = parse_json(body)
    except (ValueError, TypeError):
        raise ProviderError("Cohere embed answer is not JSON") from None
    vectors = data.get("embeddings") if isinstance(data, dict) else None
    if isinstance(vectors, dict):
        vectors = vectors.get("float")
    if not isinstance(vectors, list):
        raise ProviderError("Cohere embed answer has no float embeddings")
    meta = data.get("meta")
    billed = meta.get("billed_units") if isinstance(meta, dict) else None
    return shapes.embeddings_list(
        vectors,
        model=_text(payload.get("model")),
        prompt_tokens=shapes.count(billed.get("input_tokens")) if isinstance(billed, dict) else 0,
        encoding_format=payload.get("encoding_format"),
    )
