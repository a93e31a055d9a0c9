"""OpenAI chat / embeddings payloads -> Cohere v2 ``/v2/chat`` and ``/v2/embed`` bodies."""

from __future__ import annotations

import json
import logging

from backends.providers.base import ProviderError
from backends.providers.content import TRANSLATED_FIELDS, flatten_text, function_tool, warn_unsupported
from backends.providers.shapes import embedding_texts

logger = logging.getLogger(__name__)

# OpenAI field -> Cohere field, copied as they are.
RENAMED = {
    "temperature": "temperature",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "top_p": "p",
    "top_k": "k",
}
# Cohere-only fields a client may send as extra body fields; passed through untouched.
NATIVE = ("documents", "citation_options", "safety_mode", "priority", "strict_tools", "k", "p")
# OpenAI fields handled elsewhere (or harmless to drop without a warning).
HANDLED = TRANSLATED_FIELDS | {"response_format", "thinking", *RENAMED, *NATIVE}
EMBED_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})


def chat_body(payload: dict) -> dict:
    """Translate an OpenAI chat completion request to a Cohere v2 chat request."""
    if isinstance(payload.get("n"), int) and payload["n"] > 1:
        raise ProviderError("Cohere backends return one choice per request; 'n' must be 1")
    body: dict = {"model": payload["model"], "messages": messages(payload["messages"])}
    tools = payload.get("tools")
    if tools:
        body["tools"], strict = _tools(tools)
        if strict:
            body["strict_tools"] = True
        _tool_choice(payload.get("tool_choice"), body)
    for source, target in RENAMED.items():
        if payload.get(source) is not None:
            body[target] = payload[source]
    for name in NATIVE:
        if payload.get(name) is not None:
            body[name] = payload[name]
    max_tokens = payload.get("max_completion_tokens") or payload.get("max_tokens")
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    stop = payload.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    response_format = _response_format(payload.get("response_format"))
    if response_format is not None:
        body["response_format"] = response_format
    thinking = _thinking(payload)
    if thinking is not None:
        body["thinking"] = thinking
    body["stream"] = payload.get("stream") is True
    warn_unsupported(payload, HANDLED, provider="Cohere")
    return body


def messages(items: list) -> list[dict]:
    """OpenAI messages -> Cohere v2 messages; system/developer turns merge into one leading system turn."""
    system: list[str] = []
    out: list[dict] = []
    for item in items:
        if not isinstance(item, dict):
            raise ProviderError("each message must be an object")
        role = item.get("role")
        if role in ("system", "developer"):
            text = flatten_text(item.get("content"), provider="cohere")
            if text:
                system.append(text)
        elif role == "user":
            out.append({"role": "user", "content": _user_content(item.get("content"))})
        elif role == "assistant":
            out.append(_assistant(item))
        elif role == "tool":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("tool_call_id") or ""),
                    "content": flatten_text(item.get("content"), provider="cohere"),
                }
            )
        else:
            raise ProviderError(f"Cohere backends do not accept messages with role {role!r}")
    if system:
        out.insert(0, {"role": "system", "content": "\n\n".join(system)})
    return out


def _assistant(item: dict) -> dict:
    message: dict = {"role": "assistant"}
    text = flatten_text(item.get("content"), provider="cohere")
    tool_calls = item.get("tool_calls") or []
    if tool_calls:
        message["tool_calls"] = [_tool_call(call) for call in tool_calls]
        # Cohere's plan comes back to clients as reasoning_content; send it back where Cohere expects it.
        plan = item.get("reasoning_content")
        if isinstance(plan, str) and plan:
            message["tool_plan"] = plan
        # An empty text part next to tool calls is what Cohere's own clients send (recorded).
        message["content"] = [{"type": "text", "text": text}]
    else:
        message["content"] = text
    return message


def _tool_call(call: dict) -> dict:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if isinstance(arguments, (dict, list)):
        arguments = json.dumps(arguments)
    if not isinstance(arguments, str) or not arguments.strip():
        # Cohere streams a parameterless call as "" but rejects "" in history.
        arguments = "{}"
    return {
        "id": str(call.get("id") or ""),
        "type": "function",
        "function": {"name": str(function.get("name") or ""), "arguments": arguments},
    }


def _user_content(content) -> str | list[dict]:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise ProviderError("message content must be a string or an array of parts")
    parts: list[dict] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url") if isinstance(image, dict) else image
            entry: dict = {"url": url}
            if isinstance(image, dict) and image.get("detail"):
                entry["detail"] = image["detail"]
            parts.append({"type": "image_url", "image_url": entry})
        else:
            logger.warning("cohere: dropped a %r content part Cohere does not accept", kind)
    return parts


def _tools(tools: list) -> tuple[list[dict], bool]:
    out = []
    strict = False
    for tool in tools:
        out.append(function_tool(tool, provider="Cohere"))
        strict = strict or tool["function"].get("strict") is True
    return out, strict


def _tool_choice(choice, body: dict) -> None:
    if choice in (None, "auto"):
        return
    if choice == "none":
        body["tool_choice"] = "NONE"
    elif choice == "required":
        body["tool_choice"] = "REQUIRED"
    elif isinstance(choice, dict):
        # Cohere cannot name a tool: offer only that tool and require a call.
        name = (choice.get("function") or {}).get("name")
        named = [tool for tool in body["tools"] if tool["function"]["name"] == name]
        if not named:
            raise ProviderError(f"tool_choice names {name!r}, which is not in 'tools'")
        body["tools"] = named
        body["tool_choice"] = "REQUIRED"


def _response_format(value) -> dict | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "json_schema": schema} if schema else {"type": "json_object"}
    return None


def _thinking(payload: dict) -> dict | None:
    thinking = payload.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "disabled"):
        result = {"type": thinking["type"]}
        budget = thinking.get("token_budget") or thinking.get("budget_tokens")
        if budget:
            result["token_budget"] = budget
        return result
    effort = payload.get("reasoning_effort")
    if effort is None:
        return None
    return {"type": "disabled" if effort == "none" else "enabled"}


def embed_body(payload: dict) -> dict:
    """OpenAI embeddings request -> Cohere ``/v2/embed`` (float vectors)."""
    texts = embedding_texts(payload)
    if not texts:
        raise ProviderError("Cohere embeddings need 'input' as a string or an array of strings")
    input_type = payload.get("input_type") or "search_document"
    if input_type not in EMBED_INPUT_TYPES:
        raise ProviderError(f"input_type must be one of {', '.join(sorted(EMBED_INPUT_TYPES))}")
    body = {"model": payload["model"], "texts": texts, "input_type": input_type, "embedding_types": ["float"]}
    if payload.get("dimensions"):
        body["output_dimension"] = payload["dimensions"]
    if payload.get("truncate") in ("NONE", "START", "END"):
        body["truncate"] = payload["truncate"]
    return body
