"""Helpers shared by the translating adapters for OpenAI request content and list answers."""

from __future__ import annotations

import logging

from backends.providers import validate
from backends.providers.base import InvalidRequestError, ProviderError, clean_text, parse_json

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
    dropped = sorted(clean_text(key) for key, value in payload.items() if key not in handled and value is not None)
    if dropped:
        logger.warning("%s: dropped fields %s does not support: %s", provider.lower(), provider, ", ".join(dropped))


def flatten_text(content, *, provider: str, param: str) -> str:
    """OpenAI content (a string or text parts) as one string; other parts are dropped with a warning."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise validate.invalid(param, "a string or an array of content parts", content)
    texts = []
    for index, part in enumerate(content):
        part_type = content_part_type(part, f"{param}[{index}]")
        if part_type == "text":
            texts.append(validate.string(part.get("text"), f"{param}[{index}].text", required=True))
        else:
            logger.warning("%s: dropped a non-text content part in a non-user message", provider)
    return "\n".join(texts)


def content_part_type(part, param: str) -> str:
    """The ``type`` of a content part, which must be an object with a string type."""
    if not isinstance(part, dict):
        raise validate.invalid(param, "a content part object", part)
    return validate.string(part.get("type"), f"{param}.type", required=True)


def image_url(part: dict, param: str) -> tuple[str, str | None]:
    """The ``url`` (and ``detail``) of an ``image_url`` part: ``{"url": ...}`` or, leniently, the bare URL."""
    image = part.get("image_url")
    if isinstance(image, str):
        return image, None
    image = validate.mapping(image, f"{param}.image_url", required=True)
    url = validate.string(image.get("url"), f"{param}.image_url.url", required=True, nonempty=True)
    return url, validate.string(image.get("detail"), f"{param}.image_url.detail")


def function_tool(tool, *, provider: str, param: str) -> dict:
    """An OpenAI function tool in the ``{"type": "function", "function": {...}}`` form both Cohere and
    Ollama accept, with an empty object schema when the client gave none."""
    function = tool_function(tool, provider=provider, param=param)
    entry: dict = {"name": function["name"]}
    if function.get("description"):
        entry["description"] = function["description"]
    entry["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
    return {"type": "function", "function": entry}


def tool_function(tool, *, provider: str, param: str) -> dict:
    """The validated ``function`` object of an OpenAI function tool."""
    validate.mapping(tool, param, required=True)
    kind = tool.get("type", "function")
    if kind != "function":
        raise InvalidRequestError(f"{provider} backends accept only function tools", f"{param}.type")
    function = validate.mapping(tool.get("function"), f"{param}.function", required=True)
    validate.string(function.get("name"), f"{param}.function.name", required=True, nonempty=True)
    validate.string(function.get("description"), f"{param}.function.description")
    validate.mapping(function.get("parameters"), f"{param}.function.parameters")
    validate.boolean(function.get("strict"), f"{param}.function.strict")
    return function


def upstream_name(value) -> str | None:
    """A model id or page token from upstream JSON: a non-empty string that encodes as UTF-8, else None."""
    if isinstance(value, str) and value and clean_text(value) is value:
        return value
    return None


def model_items(body: bytes, key: str, *, bare_list: bool = False) -> tuple[dict, list]:
    """The parsed model-list answer and its array under ``key`` (or the answer itself when it is a
    bare array and ``bare_list`` allows it)."""
    try:
        data = parse_json(body)
    except (ValueError, TypeError):
        raise ProviderError("model list is not JSON") from None
    if bare_list and isinstance(data, list):
        return {}, data
    items = data.get(key) if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ProviderError(f"model list has no '{key}' array")
    return data, items
