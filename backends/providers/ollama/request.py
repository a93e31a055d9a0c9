"""OpenAI chat / embeddings payloads -> Ollama native ``/api/chat`` and ``/api/embed`` bodies."""

from __future__ import annotations

import json
import logging

from backends.providers.base import ProviderError
from backends.providers.content import TRANSLATED_FIELDS, flatten_text, function_tool, warn_unsupported
from backends.providers.shapes import embedding_texts

logger = logging.getLogger(__name__)

# OpenAI field -> Ollama ``options`` field.
OPTIONS = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}
# Ollama-only top-level fields a client may send as extra body fields.
NATIVE = ("keep_alive", "think")
HANDLED = TRANSLATED_FIELDS | {"response_format", "options", *OPTIONS, *NATIVE}


def chat_body(payload: dict) -> dict:
    """Translate an OpenAI chat completion request to an Ollama ``/api/chat`` request."""
    if isinstance(payload.get("n"), int) and payload["n"] > 1:
        raise ProviderError("Ollama backends return one choice per request; 'n' must be 1")
    body: dict = {"model": payload["model"], "messages": messages(payload["messages"])}
    tools = payload.get("tools")
    choice = payload.get("tool_choice")
    if tools and choice != "none":
        body["tools"] = [function_tool(tool, provider="Ollama") for tool in tools]
        if choice not in (None, "auto"):
            logger.warning("ollama: Ollama cannot force a tool call; tool_choice %r sent as auto", choice)
    options = {target: payload[source] for source, target in OPTIONS.items() if payload.get(source) is not None}
    max_tokens = payload.get("max_completion_tokens") or payload.get("max_tokens")
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    stop = payload.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if isinstance(payload.get("options"), dict):
        options.update(payload["options"])
    if options:
        body["options"] = options
    response_format = payload.get("response_format")
    if isinstance(response_format, dict):
        if response_format.get("type") == "json_object":
            body["format"] = "json"
        elif response_format.get("type") == "json_schema":
            body["format"] = (response_format.get("json_schema") or {}).get("schema") or "json"
    effort = payload.get("reasoning_effort")
    if effort is not None:
        body["think"] = effort != "none"
    for name in NATIVE:
        if payload.get(name) is not None:
            body[name] = payload[name]
    # Ollama streams unless told otherwise, so always say which.
    body["stream"] = payload.get("stream") is True
    warn_unsupported(payload, HANDLED, provider="Ollama")
    return body


def messages(items: list) -> list[dict]:
    out: list[dict] = []
    # Ollama answers tool results by tool name; OpenAI by call id.
    names: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ProviderError("each message must be an object")
        role = item.get("role")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": flatten_text(item.get("content"), provider="ollama")})
        elif role == "user":
            text, images = _user_content(item.get("content"))
            message = {"role": "user", "content": text}
            if images:
                message["images"] = images
            out.append(message)
        elif role == "assistant":
            out.append(_assistant(item, names))
        elif role == "tool":
            call_id = str(item.get("tool_call_id") or "")
            message = {"role": "tool", "content": flatten_text(item.get("content"), provider="ollama")}
            name = item.get("name") or names.get(call_id)
            if name:
                message["tool_name"] = name
            if call_id:
                message["tool_call_id"] = call_id
            out.append(message)
        else:
            raise ProviderError(f"Ollama backends do not accept messages with role {role!r}")
    return out


def _assistant(item: dict, names: dict[str, str]) -> dict:
    message: dict = {"role": "assistant", "content": flatten_text(item.get("content"), provider="ollama")}
    reasoning = item.get("reasoning_content") or item.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        message["thinking"] = reasoning
    calls = []
    for call in item.get("tool_calls") or []:
        function = call.get("function") or {}
        name = str(function.get("name") or "")
        entry: dict = {"function": {"name": name, "arguments": _arguments(function.get("arguments"))}}
        if call.get("id"):
            entry["id"] = call["id"]
            names[call["id"]] = name
        calls.append(entry)
    if calls:
        message["tool_calls"] = calls
    return message


def _arguments(value) -> dict:
    """OpenAI's JSON-string arguments -> the JSON object Ollama expects."""
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        raise ProviderError("tool call arguments must be a JSON object string") from None
    if not isinstance(parsed, dict):
        raise ProviderError("tool call arguments must be a JSON object string")
    return parsed


def _user_content(content) -> tuple[str, list[str]]:
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise ProviderError("message content must be a string or an array of parts")
    texts, images = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text") or ""))
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url") if isinstance(image, dict) else image
            images.append(_image_base64(url))
        else:
            logger.warning("ollama: dropped a %r content part Ollama does not accept", kind)
    return "\n".join(texts), images


def _image_base64(url) -> str:
    if not isinstance(url, str) or not url.startswith("data:") or "," not in url:
        raise ProviderError("Ollama accepts images only as base64 data URLs (data:image/...;base64,...)")
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise ProviderError("Ollama accepts images only as base64 data URLs (data:image/...;base64,...)")
    return data


def embed_body(payload: dict) -> dict:
    texts = embedding_texts(payload)
    if not texts:
        raise ProviderError("Ollama embeddings need 'input' as a string or an array of strings")
    body: dict = {"model": payload["model"], "input": texts}
    if payload.get("dimensions"):
        body["dimensions"] = payload["dimensions"]
    for name in ("truncate", "keep_alive", "options"):
        if payload.get(name) is not None:
            body[name] = payload[name]
    return body
