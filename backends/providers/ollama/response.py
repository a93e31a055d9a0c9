"""Ollama native answers -> OpenAI: chat completion, tool calls, usage, errors, models, embeddings."""

from __future__ import annotations

import logging
import re
import secrets
import string
from datetime import datetime

from backends import capabilities as kinds
from backends.providers import shapes
from backends.providers.base import ModelInfo, OpenAIError, ProviderError, clean_text, parse_json, retry_after_seconds
from backends.providers.content import model_items, upstream_name

logger = logging.getLogger(__name__)

ID_ALPHABET = string.ascii_lowercase + string.digits
# Errors that mean "this model cannot do what was asked": never worth another backend's time.
UNSUPPORTED = re.compile(r"does not support (tools|thinking|insert|vision|embedding|completion)", re.I)
EMBEDDING_FAMILIES = frozenset({"bert", "nomic-bert"})


def call_id() -> str:
    """An id in the shape Ollama's own OpenAI layer mints (``call_`` + 8 lowercase alphanumerics)."""
    return "call_" + "".join(secrets.choice(ID_ALPHABET) for _ in range(8))


def finish_reason(done_reason, *, has_tool_calls: bool) -> str:
    # Ollama reports "stop" when the turn ended in tool calls; OpenAI clients branch on tool_calls.
    if has_tool_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def usage(data: dict) -> dict:
    """OpenAI usage from ``prompt_eval_count`` / ``eval_count``; Ollama reports no cache or reasoning counts."""
    return shapes.usage(shapes.count(data.get("prompt_eval_count")), shapes.count(data.get("eval_count")))


def tool_call(call, index: int) -> dict:
    call = call if isinstance(call, dict) else {}
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = shapes.dumps(arguments if arguments is not None else {}, separators=(",", ":")).decode()
    given_id = call.get("id")
    name = function.get("name")
    return {
        "index": index,
        "id": given_id if isinstance(given_id, str) and given_id else call_id(),
        "type": "function",
        "function": {"name": name if isinstance(name, str) else "", "arguments": arguments},
    }


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def chat_completion(payload: dict, body: bytes) -> bytes:
    objects = _objects(body)
    error = next((obj["error"] for obj in objects if "error" in obj), None)
    if error is not None:
        if isinstance(error, dict):
            error = error.get("message")
        raise ProviderError(f"Ollama failed: {clean_text(error)[:500] or 'no message'}")
    content, thinking, calls = [], [], []
    for obj in objects:
        message = obj.get("message")
        message = message if isinstance(message, dict) else {}
        content.append(_text(message.get("content")))
        thinking.append(_text(message.get("thinking")))
        if isinstance(message.get("tool_calls"), list):
            calls.extend(message["tool_calls"])
    last = objects[-1]
    tool_calls = [tool_call(call, index) for index, call in enumerate(calls)]
    for call in tool_calls:
        del call["index"]  # only stream deltas carry an index
    out = shapes.assistant_message("".join(content), tool_calls, "".join(thinking))
    return shapes.completion(
        id=f"chatcmpl-{secrets.token_hex(12)}",
        model=_text(payload.get("model")),
        message=out,
        finish_reason=finish_reason(last.get("done_reason"), has_tool_calls=bool(tool_calls)),
        usage=usage(last),
    )


def _objects(body: bytes) -> list[dict]:
    """One JSON object, or (if the server streamed anyway) every NDJSON line."""
    try:
        data = parse_json(body)
        objects = [data]
    except (ValueError, TypeError):
        try:
            objects = [parse_json(line) for line in body.splitlines() if line.strip()]
        except (ValueError, TypeError, AttributeError):
            raise ProviderError("Ollama answered with something that is not JSON") from None
    objects = [obj for obj in objects if isinstance(obj, dict)]
    if not objects:
        raise ProviderError("Ollama answered with no chat response")
    return objects


def error(status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
    """``{"error": "text"}`` (or OpenAI's envelope from ollama.com) -> OpenAI's envelope, status kept."""
    retry_after = retry_after_seconds(headers)
    try:
        data = parse_json(body)
    except (ValueError, TypeError):
        data = None
    inner = data.get("error") if isinstance(data, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("message"), str) and inner["message"]:
        message = inner["message"]
    elif isinstance(inner, str) and inner:
        message = inner
    elif isinstance(body, bytes):
        message = body.decode("utf-8", "replace").strip()[:500] or f"upstream returned HTTP {status}"
    else:
        message = f"upstream returned HTTP {status}"
    code = None
    if UNSUPPORTED.search(message):
        status, code = 400, "unsupported_capability"
    elif status == 404 and "not found" in message.lower():
        code = "model_not_found"
    elif status == 401:
        code = "invalid_api_key"
    return OpenAIError(status, message, code=code, retry_after=retry_after)


def stream_error(message: str) -> OpenAIError:
    code = "unsupported_capability" if UNSUPPORTED.search(message) else "upstream_error"
    return OpenAIError(502, message, type="api_error", code=code)


def models(body: bytes) -> list[ModelInfo]:
    _, items = model_items(body, "models")
    found = []
    for item in items:
        if not isinstance(item, dict):
            continue
        name = upstream_name(item.get("model")) or upstream_name(item.get("name"))
        if name:
            found.append(ModelInfo(name, created(item.get("modified_at")), capability(item)))
    return found


def capability(item: dict) -> str:
    """What the model is for, from an ``/api/tags`` entry or an ``/api/show`` answer.

    ``capabilities`` (``completion``, ``embedding``, ``image``, ``tools``, ``vision``, ...) is what
    Ollama itself says; ``/api/show`` always has it, ``/api/tags`` only on some servers. Discovery
    reads ``/api/tags`` alone: asking ``/api/show`` for each model would cost a request per model
    per discovery round. Without the list, a BERT family or ``embed`` in the name means an
    embedding model, then OpenAI-style ids (``backends.capabilities.from_id``); anything else is
    unknown, shown as chat and refused nowhere.
    """
    said = item.get("capabilities")
    if isinstance(said, list) and said:
        if "completion" in said:
            return kinds.CHAT
        if "embedding" in said:
            return kinds.EMBEDDING
        if "image" in said:
            return kinds.IMAGE
        return kinds.UNKNOWN
    details = item.get("details")
    details = details if isinstance(details, dict) else {}
    families = details.get("families")
    families = {
        value
        for value in (details.get("family"), *(families if isinstance(families, list) else ()))
        if isinstance(value, str)
    }
    if families & EMBEDDING_FAMILIES:
        return kinds.EMBEDDING
    name = item.get("model") if isinstance(item.get("model"), str) else item.get("name")
    return kinds.from_id(name) if isinstance(name, str) else kinds.UNKNOWN


def created(value) -> int | None:
    """Ollama's RFC 3339 ``modified_at`` (nanoseconds allowed) as Unix seconds, else None."""
    if not isinstance(value, str):
        return None
    # Ollama writes nanoseconds; Python parses at most microseconds.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except (ValueError, OverflowError, OSError):
        return None


def embeddings(payload: dict, body: bytes) -> bytes:
    try:
        data = parse_json(body)
    except (ValueError, TypeError):
        raise ProviderError("Ollama embed answer is not JSON") from None
    vectors = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(vectors, list):
        raise ProviderError("Ollama embed answer has no embeddings")
    return shapes.embeddings_list(
        vectors,
        model=_text(payload.get("model")),
        prompt_tokens=shapes.count(data.get("prompt_eval_count")),
        encoding_format=payload.get("encoding_format"),
    )
