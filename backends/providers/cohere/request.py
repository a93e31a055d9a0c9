"""OpenAI chat / embeddings payloads -> Cohere v2 ``/v2/chat`` and ``/v2/embed`` bodies."""

from __future__ import annotations

import json
import logging

from backends.providers import validate
from backends.providers.base import InvalidRequestError, clean_text
from backends.providers.content import (
    TRANSLATED_FIELDS,
    content_part_type,
    flatten_text,
    function_tool,
    image_url,
    warn_unsupported,
)
from backends.providers.shapes import embedding_options, embedding_texts

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
    model, items = validate.chat_basics(payload)
    n = validate.integer(payload.get("n"), "n", minimum=1)
    if n is not None and n > 1:
        raise InvalidRequestError("Cohere backends return one choice per request; 'n' must be 1", "n")
    body: dict = {"model": model, "messages": messages(items)}
    tools = validate.array(payload.get("tools"), "tools")
    if tools:
        body["tools"], strict = _tools(tools)
        if strict:
            body["strict_tools"] = True
        _tool_choice(payload.get("tool_choice"), body)
    else:
        _check_tool_choice(payload.get("tool_choice"))
    for source, target in RENAMED.items():
        value = _sampling(payload.get(source), source)
        if value is not None:
            body[target] = value
    for name in NATIVE:
        value = payload.get(name)
        if value is not None:
            _NATIVE_CHECKS[name](value, name)
            body[name] = value
    max_tokens = validate.max_tokens(payload)
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    stop = validate.stop_sequences(payload.get("stop"))
    if stop:
        body["stop_sequences"] = stop
    response_format = _response_format(payload.get("response_format"))
    if response_format is not None:
        body["response_format"] = response_format
    thinking = _thinking(payload)
    if thinking is not None:
        body["thinking"] = thinking
    body["stream"] = payload.get("stream") is True
    validate.include_usage(payload)
    warn_unsupported(payload, HANDLED, provider="Cohere")
    return body


# Ranges as OpenAI documents them; Cohere's own (narrower) limits are its to report.
SAMPLING = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "p": (0, 1),
    "frequency_penalty": (-2, 2),
    "presence_penalty": (-2, 2),
}


def _sampling(value, name: str):
    if name in SAMPLING:
        low, high = SAMPLING[name]
        return validate.number(value, name, minimum=low, maximum=high)
    return validate.integer(value, name, minimum=0 if name in ("top_k", "k") else validate.INT64_MIN)


_NATIVE_CHECKS = {
    "documents": validate.array,
    "citation_options": validate.mapping,
    "safety_mode": validate.string,
    "priority": lambda value, name: validate.integer(value, name, minimum=0),
    "strict_tools": validate.boolean,
    "k": _sampling,
    "p": _sampling,
}


def messages(items: list) -> list[dict]:
    """OpenAI messages -> Cohere v2 messages; system/developer turns merge into one leading system turn."""
    system: list[str] = []
    out: list[dict] = []
    for position, item in enumerate(items):
        param = f"messages[{position}]"
        validate.mapping(item, param, required=True)
        role = item.get("role")
        if role in ("system", "developer"):
            text = flatten_text(item.get("content"), provider="cohere", param=f"{param}.content")
            if text:
                system.append(text)
        elif role == "user":
            out.append({"role": "user", "content": _user_content(item.get("content"), f"{param}.content")})
        elif role == "assistant":
            out.append(_assistant(item, param))
        elif role == "tool":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": validate.string(item.get("tool_call_id"), f"{param}.tool_call_id") or "",
                    "content": flatten_text(item.get("content"), provider="cohere", param=f"{param}.content"),
                }
            )
        else:
            raise InvalidRequestError(
                f"Cohere backends do not accept messages with role {clean_text(repr(role))[:50]}", f"{param}.role"
            )
    if system:
        out.insert(0, {"role": "system", "content": "\n\n".join(system)})
    return out


def _assistant(item: dict, param: str) -> dict:
    message: dict = {"role": "assistant"}
    text = flatten_text(item.get("content"), provider="cohere", param=f"{param}.content")
    tool_calls = validate.array(item.get("tool_calls"), f"{param}.tool_calls") or []
    # Cohere's plan comes back to clients as reasoning_content; send it back where Cohere expects it.
    plan = validate.string(item.get("reasoning_content"), f"{param}.reasoning_content")
    if tool_calls:
        message["tool_calls"] = [_tool_call(call, f"{param}.tool_calls[{i}]") for i, call in enumerate(tool_calls)]
        if plan:
            message["tool_plan"] = plan
        # An empty text part next to tool calls is what Cohere's own clients send (recorded).
        message["content"] = [{"type": "text", "text": text}]
    else:
        message["content"] = text
    return message


def _tool_call(call, param: str) -> dict:
    validate.mapping(call, param, required=True)
    function = validate.mapping(call.get("function"), f"{param}.function") or {}
    arguments = function.get("arguments")
    if isinstance(arguments, (dict, list)):
        arguments = json.dumps(arguments)
    elif arguments is not None and not isinstance(arguments, str):
        raise validate.invalid(f"{param}.function.arguments", "a JSON string", arguments)
    if not isinstance(arguments, str) or not arguments.strip():
        # Cohere streams a parameterless call as "" but rejects "" in history.
        arguments = "{}"
    return {
        "id": validate.string(call.get("id"), f"{param}.id") or "",
        "type": "function",
        "function": {
            "name": validate.string(function.get("name"), f"{param}.function.name") or "",
            "arguments": arguments,
        },
    }


def _user_content(content, param: str) -> str | list[dict]:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise validate.invalid(param, "a string or an array of content parts", content)
    parts: list[dict] = []
    for index, part in enumerate(content):
        kind = content_part_type(part, f"{param}[{index}]")
        if kind == "text":
            parts.append(
                {"type": "text", "text": validate.string(part.get("text"), f"{param}[{index}].text", required=True)}
            )
        elif kind == "image_url":
            url, detail = image_url(part, f"{param}[{index}]")
            entry: dict = {"url": url}
            if detail:
                entry["detail"] = detail
            parts.append({"type": "image_url", "image_url": entry})
        else:
            logger.warning("cohere: dropped a %r content part Cohere does not accept", clean_text(kind)[:50])
    return parts


def _tools(tools: list) -> tuple[list[dict], bool]:
    out = []
    strict = False
    for index, tool in enumerate(tools):
        out.append(function_tool(tool, provider="Cohere", param=f"tools[{index}]"))
        strict = strict or tool["function"].get("strict") is True
    return out, strict


def _check_tool_choice(choice) -> None:
    """``tool_choice`` without tools: checked for shape, then dropped (there is nothing to choose)."""
    if choice is None or choice in TOOL_CHOICES:
        return
    _named_tool(choice)


TOOL_CHOICES = ("auto", "none", "required")


def _named_tool(choice) -> str:
    if not isinstance(choice, dict):
        raise InvalidRequestError("'tool_choice' must be auto, none, required or a named function", "tool_choice")
    function = validate.mapping(choice.get("function"), "tool_choice.function", required=True)
    return validate.string(function.get("name"), "tool_choice.function.name", required=True, nonempty=True)


def _tool_choice(choice, body: dict) -> None:
    if choice in (None, "auto"):
        return
    if choice == "none":
        body["tool_choice"] = "NONE"
    elif choice == "required":
        body["tool_choice"] = "REQUIRED"
    else:
        # Cohere cannot name a tool: offer only that tool and require a call.
        name = _named_tool(choice)
        named = [tool for tool in body["tools"] if tool["function"]["name"] == name]
        if not named:
            raise InvalidRequestError(
                f"tool_choice names {clean_text(repr(name))[:100]}, which is not in 'tools'",
                "tool_choice.function.name",
            )
        body["tools"] = named
        body["tool_choice"] = "REQUIRED"


def _response_format(value) -> dict | None:
    value = validate.mapping(value, "response_format")
    if value is None:
        return None
    kind = validate.string(value.get("type"), "response_format.type", required=True)
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = validate.mapping(value.get("json_schema"), "response_format.json_schema") or {}
        schema = validate.mapping(spec.get("schema"), "response_format.json_schema.schema")
        return {"type": "json_object", "json_schema": schema} if schema else {"type": "json_object"}
    if kind == "text":
        return None
    # A format the backend cannot express must not turn into prose with 200 (issue 13).
    raise InvalidRequestError(
        f"response_format type {clean_text(repr(kind))[:50]} is not supported by cohere backends; "
        "use text, json_object or json_schema",
        "response_format",
    )


def _thinking(payload: dict) -> dict | None:
    thinking = validate.mapping(payload.get("thinking"), "thinking")
    if thinking is not None and thinking.get("type") in ("enabled", "disabled"):
        result = {"type": thinking["type"]}
        budget = validate.integer(thinking.get("token_budget"), "thinking.token_budget", minimum=0)
        if budget is None:
            budget = validate.integer(thinking.get("budget_tokens"), "thinking.budget_tokens", minimum=0)
        if budget:
            result["token_budget"] = budget
        return result
    effort = validate.string(payload.get("reasoning_effort"), "reasoning_effort")
    if effort is None:
        return None
    return {"type": "disabled" if effort == "none" else "enabled"}


TRUNCATE = frozenset({"NONE", "START", "END"})


def embed_body(payload: dict) -> dict:
    """OpenAI embeddings request -> Cohere ``/v2/embed`` (float vectors)."""
    model, _, dimensions = embedding_options(payload)
    texts = embedding_texts(payload)
    input_type = validate.choice(payload.get("input_type"), "input_type", EMBED_INPUT_TYPES) or "search_document"
    body = {"model": model, "texts": texts, "input_type": input_type, "embedding_types": ["float"]}
    if dimensions:
        body["output_dimension"] = dimensions
    truncate = payload.get("truncate")
    if isinstance(truncate, str) and truncate in TRUNCATE:
        body["truncate"] = truncate
    return body
