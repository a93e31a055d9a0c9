"""Ollama native answers -> OpenAI: chat completion, tool calls, usage, errors, models, embeddings."""

from __future__ import annotations

import json
import logging
import re
import secrets
import string
from datetime import datetime

from backends.providers import shapes
from backends.providers.base import ModelInfo, OpenAIError, ProviderError, retry_after_seconds
from backends.providers.content import model_items

logger = logging.getLogger(__name__)

ID_ALPHABET = string.ascii_lowercase + string.digits
# Errors that mean "this model cannot do what was asked": never worth another backend's time.
UNSUPPORTED = re.compile(r"does not support (tools|thinking|insert|vision|embedding|completion)", re.I)
EMBEDDING_FAMILIES = frozenset({"bert", "nomic-bert"})


def call_id() -> str:
    """An id in the shape Ollama's own OpenAI layer mints (``call_`` + 8 lowercase alphanumerics)."""
    return "call_" + "".join(secrets.choice(ID_ALPHABET) for _ in range(8))


def finish_reason(done_reason: str | None, *, has_tool_calls: bool) -> str:
    # Ollama reports "stop" when the turn ended in tool calls; OpenAI clients branch on tool_calls.
    if has_tool_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def usage(data: dict) -> dict:
    return shapes.usage(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0))


def tool_call(call: dict, index: int) -> dict:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False, separators=(",", ":"))
    return {
        "index": index,
        "id": call.get("id") or call_id(),
        "type": "function",
        "function": {"name": function.get("name") or "", "arguments": arguments},
    }


def chat_completion(payload: dict, body: bytes) -> bytes:
    objects = _objects(body)
    error = next((obj["error"] for obj in objects if "error" in obj), None)
    if error is not None:
        raise ProviderError(f"Ollama failed: {error}")
    content, thinking, calls = [], [], []
    for obj in objects:
        message = obj.get("message") or {}
        content.append(message.get("content") or "")
        thinking.append(message.get("thinking") or "")
        calls.extend(message.get("tool_calls") or [])
    last = objects[-1]
    tool_calls = [tool_call(call, index) for index, call in enumerate(calls)]
    for call in tool_calls:
        del call["index"]  # only stream deltas carry an index
    out = shapes.assistant_message("".join(content), tool_calls, "".join(thinking))
    return shapes.completion(
        id=f"chatcmpl-{secrets.token_hex(12)}",
        model=payload.get("model", ""),
        message=out,
        finish_reason=finish_reason(last.get("done_reason"), has_tool_calls=bool(tool_calls)),
        usage=usage(last),
    )


def _objects(body: bytes) -> list[dict]:
    """One JSON object, or (if the server streamed anyway) every NDJSON line."""
    try:
        data = json.loads(body)
        objects = [data]
    except ValueError:
        try:
            objects = [json.loads(line) for line in body.splitlines() if line.strip()]
        except ValueError:
            raise ProviderError("Ollama answered with something that is not JSON") from None
    objects = [obj for obj in objects if isinstance(obj, dict)]
    if not objects:
        raise ProviderError("Ollama answered with no chat response")
    return objects


def error(status: int, body: bytes, headers: dict[str, str] | None = None) -> OpenAIError:
    """``{"error": "text"}`` (or OpenAI's envelope from ollama.com) -> OpenAI's envelope, status kept."""
    retry_after = retry_after_seconds(headers)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    inner = data.get("error") if isinstance(data, dict) else None
    if isinstance(inner, dict):
        message = str(inner.get("message") or f"upstream returned HTTP {status}")
    elif isinstance(inner, str) and inner:
        message = inner
    else:
        message = body.decode("utf-8", "replace").strip()[:500] or f"upstream returned HTTP {status}"
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
        name = item.get("model") or item.get("name")
        if isinstance(name, str) and name:
            found.append(ModelInfo(name, _created(item.get("modified_at")), _capability(item)))
    return found


def _capability(item: dict) -> str:
    capabilities = item.get("capabilities")
    if isinstance(capabilities, list) and capabilities:
        return "embedding" if "embedding" in capabilities and "completion" not in capabilities else "chat"
    details = item.get("details") or {}
    families = {details.get("family"), *(details.get("families") or [])}
    name = str(item.get("name") or "")
    return "embedding" if families & EMBEDDING_FAMILIES or "embed" in name else "chat"


def _created(value) -> int | None:
    if not isinstance(value, str):
        return None
    # Ollama writes nanoseconds; Python parses at most microseconds.
    value = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        return None


def embeddings(payload: dict, body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        raise ProviderError("Ollama embed answer is not JSON") from None
    vectors = data.get("embeddings") if isinstance(data, dict) else None
    if not isinstance(vectors, list):
        raise ProviderError("Ollama embed answer has no embeddings")
    return shapes.embeddings_list(
        vectors,
        model=payload.get("model", ""),
        prompt_tokens=int(data.get("prompt_eval_count") or 0),
        encoding_format=payload.get("encoding_format"),
    )
