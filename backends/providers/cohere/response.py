"""Cohere v2 answers -> OpenAI: chat completion, finish reasons, usage, errors, models, embeddings."""

from __future__ import annotations

import json
import logging

from backends.providers import shapes
from backends.providers.base import ModelInfo, OpenAIError, ProviderError, generic_error, retry_after_seconds
from backends.providers.content import model_items

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


def finish_reason(value: str | None, *, has_tool_calls: bool) -> str:
    """Map Cohere's finish reason; ERROR raises because it is a failure, not a reason to stop."""
    if value == "ERROR":
        raise CohereGenerationError("Cohere stopped with finish_reason ERROR")
    if has_tool_calls:
        return "tool_calls"
    mapped = FINISH_REASONS.get(value or "COMPLETE")
    if mapped is None:
        logger.warning("cohere: unknown finish_reason %r mapped to stop", value)
        return "stop"
    return mapped


def usage(data: dict | None) -> dict:
    """OpenAI usage from Cohere's ``usage.tokens`` (falling back to ``billed_units``)."""
    data = data or {}
    counts = data.get("tokens") or data.get("billed_units") or {}
    cached = data.get("cached_tokens")
    return shapes.usage(
        int(counts.get("input_tokens") or 0),
        int(counts.get("output_tokens") or 0),
        int(cached) if isinstance(cached, (int, float)) else None,
    )


def chat_completion(payload: dict, body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        raise ProviderError("Cohere answered with something that is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        raise ProviderError("Cohere's answer has no 'message'")
    message = data["message"]
    texts, thoughts = [], []
    for part in message.get("content") or []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            texts.append(part.get("text") or "")
        elif part.get("type") == "thinking":
            thoughts.append(part.get("thinking") or "")
    if message.get("tool_plan"):
        thoughts.append(message["tool_plan"])
    tool_calls = [_tool_call(call) for call in message.get("tool_calls") or []]
    out = shapes.assistant_message("".join(texts), tool_calls, "\n\n".join(thoughts))
    return shapes.completion(
        id=f"chatcmpl-{data.get('id') or 'cohere'}",
        model=payload.get("model", ""),
        message=out,
        finish_reason=finish_reason(data.get("finish_reason"), has_tool_calls=bool(tool_calls)),
        usage=usage(data.get("usage")),
    )


def _tool_call(call: dict) -> dict:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if isinstance(arguments, (dict, list)):
        arguments = json.dumps(arguments)
    return {
        "id": call.get("id") or "",
        "type": "function",
        "function": {"name": function.get("name") or "", "arguments": arguments or "{}"},
    }


def error(status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
    """Cohere's flat ``{"id", "message", "error_type"?}`` -> OpenAI's envelope, status kept."""
    try:
        data = json.loads(body)
    except ValueError:
        return generic_error(status, body, headers)
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return generic_error(status, body, headers)
    message = data["message"]
    code = ERROR_CODES.get(str(data.get("error_type") or ""))
    if code is None and status == 401:
        code = "invalid_api_key"
    if code is None and isinstance(data.get("error_type"), str):
        code = data["error_type"].lower()
    return OpenAIError(status, message, code=code, retry_after=retry_after_seconds(headers))


def models(body: bytes) -> tuple[list[ModelInfo], str | None]:
    """Chat and embedding models from ``GET /v1/models``, and the next page token."""
    data, items = model_items(body, "models")
    found = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            continue
        endpoints = item.get("endpoints") or []
        if "chat" in endpoints:
            found.append(ModelInfo(item["name"], capability="chat"))
        elif "embed" in endpoints:
            found.append(ModelInfo(item["name"], capability="embedding"))
    token = data.get("next_page_token")
    return found, token if isinstance(token, str) and token else None


def embeddings(payload: dict, body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        raise ProviderError("Cohere embed answer is not JSON") from None
    vectors = data.get("embeddings") if isinstance(data, dict) else None
    if isinstance(vectors, dict):
        vectors = vectors.get("float")
    if not isinstance(vectors, list):
        raise ProviderError("Cohere embed answer has no float embeddings")
    billed = ((data.get("meta") or {}).get("billed_units") or {}).get("input_tokens") or 0
    return shapes.embeddings_list(
        vectors,
        model=payload.get("model", ""),
        prompt_tokens=int(billed),
        encoding_format=payload.get("encoding_format"),
    )
