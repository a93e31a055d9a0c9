"""Helpers shared by the translating adapters for OpenAI request content and list answers."""

from __future__ import annotations

import json
import logging

from backends.providers.base import ProviderError

logger = logging.getLogger(__name__)

# OpenAI chat fields every translating adapter maps itself; each adds its own on top.
TRANSLATED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "tools",
        "tool_choice",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "reasoning_effort",
        "n",
    }
)


def warn_unsupported(payload: dict, handled: frozenset[str], *, provider: str) -> None:
    """Log (once per request) the OpenAI fields this provider cannot take and that were dropped."""
    dropped = sorted(key for key, value in payload.items() if key not in handled and value is not None)
    if dropped:
        logger.warning("%s: dropped fields %s does not support: %s", provider.lower(), provider, ", ".join(dropped))


def flatten_text(content, *, provider: str) -> str:
    """OpenAI content (a string or text parts) as one string; other parts are dropped with a warning."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text") or ""))
            else:
                logger.warning("%s: dropped a non-text content part in a non-user message", provider)
        return "\n".join(texts)
    return str(content)


def function_tool(tool, *, provider: str) -> dict:
    """An OpenAI function tool in the ``{"type": "function", "function": {...}}`` form both Cohere and
    Ollama accept, with an empty object schema when the client gave none."""
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise ProviderError(f"{provider} backends accept only function tools")
    function = tool.get("function") or {}
    entry: dict = {"name": function.get("name")}
    if function.get("description"):
        entry["description"] = function["description"]
    entry["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "function", "function": entry}


def model_items(body: bytes, key: str, *, bare_list: bool = False) -> tuple[dict, list]:
    """The parsed model-list answer and its array under ``key`` (or the answer itself when it is a
    bare array and ``bare_list`` allows it)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise ProviderError("model list is not JSON") from None
    if bare_list and isinstance(data, list):
        return {}, data
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ProviderError(f"model list has no '{key}' array")
    return data, items
