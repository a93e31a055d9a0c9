"""OpenAI chat / embeddings payloads -> Ollama native ``/api/chat`` and ``/api/embed`` bodies."""

from __future__ import annotations

import logging

from backends.providers import validate
from backends.providers.base import InvalidRequestError, clean_text, parse_json
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


# Ranges as OpenAI documents them (Ollama's own are its to report).
SAMPLING = {
    "temperature": (0, 2),
    "top_p": (0, 1),
    "frequency_penalty": (-2, 2),
    "presence_penalty": (-2, 2),
}


def chat_body(payload: dict) -> dict:
    """Translate an OpenAI chat completion request to an Ollama ``/api/chat`` request."""
    model, items = validate.chat_basics(payload)
    n = validate.integer(payload.get("n"), "n", minimum=1)
    if n is not None and n > 1:
        raise InvalidRequestError("Ollama backends return one choice per request; 'n' must be 1", "n")
    body: dict = {"model": model, "messages": messages(items)}
    tools = validate.array(payload.get("tools"), "tools")
    choice = _tool_choice(payload.get("tool_choice"))
    if tools and choice != "none":
        body["tools"] = [function_tool(tool, provider="Ollama", param=f"tools[{i}]") for i, tool in enumerate(tools)]
        if choice not in (None, "auto"):
            logger.warning("ollama: Ollama cannot force a tool call; tool_choice %r sent as auto", choice)
    options = {}
    for source, target in OPTIONS.items():
        value = _option(payload.get(source), source)
        if value is not None:
            options[target] = value
    max_tokens = validate.max_tokens(payload)
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    stop = validate.stop_sequences(payload.get("stop"))
    if stop:
        options["stop"] = stop
    native_options = validate.mapping(payload.get("options"), "options")
    if native_options:
        options.update(native_options)
    if options:
        body["options"] = options
    response_format = _format(payload.get("response_format"))
    if response_format is not None:
        body["format"] = response_format
    effort = validate.string(payload.get("reasoning_effort"), "reasoning_effort")
    if effort is not None:
        body["think"] = effort != "none"
    keep_alive = _keep_alive(payload.get("keep_alive"))
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    think = payload.get("think")
    if think is not None:
        # Ollama takes a boolean, or "low"/"medium"/"high" for models with levels.
        if not isinstance(think, (bool, str)):
            raise validate.invalid("think", "a boolean or a level string", think)
        body["think"] = think
    # Ollama streams unless told otherwise, so always say which.
    body["stream"] = payload.get("stream") is True
    validate.include_usage(payload)
    warn_unsupported(payload, HANDLED, provider="Ollama")
    return body


def _keep_alive(value):
    """Ollama's ``keep_alive``: a duration string ("5m") or a number of seconds (negative: forever)."""
    if value is None or isinstance(value, str):
        return value
    return validate.number(value, "keep_alive", minimum=-(2**53), maximum=2**53)


def _option(value, name: str):
    if name in SAMPLING:
        low, high = SAMPLING[name]
        return validate.number(value, name, minimum=low, maximum=high)
    return validate.integer(value, name, minimum=0 if name == "top_k" else validate.INT64_MIN)


def _tool_choice(choice):
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if not isinstance(choice, dict):
        raise InvalidRequestError("'tool_choice' must be auto, none, required or a named function", "tool_choice")
    function = validate.mapping(choice.get("function"), "tool_choice.function", required=True)
    return validate.string(function.get("name"), "tool_choice.function.name", required=True, nonempty=True)


def _format(value):
    value = validate.mapping(value, "response_format")
    if value is None:
        return None
    kind = validate.string(value.get("type"), "response_format.type", required=True)
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = validate.mapping(value.get("json_schema"), "response_format.json_schema") or {}
        return validate.mapping(spec.get("schema"), "response_format.json_schema.schema") or "json"
    if kind == "text":
        return None
    # A format the backend cannot express must not turn into prose with 200 (issue 13).
    raise InvalidRequestError(
        f"response_format type {clean_text(repr(kind))[:50]} is not supported by ollama backends; "
        "use text, json_object or json_schema",
        "response_format",
    )


def messages(items: list) -> list[dict]:
    out: list[dict] = []
    # Ollama answers tool results by tool name; OpenAI by call id.
    names: dict[str, str] = {}
    for position, item in enumerate(items):
        param = f"messages[{position}]"
        validate.mapping(item, param, required=True)
        role = item.get("role")
        if role in ("system", "developer"):
            text = flatten_text(item.get("content"), provider="ollama", param=f"{param}.content")
            out.append({"role": "system", "content": text})
        elif role == "user":
            text, images = _user_content(item.get("content"), f"{param}.content")
            message = {"role": "user", "content": text}
            if images:
                message["images"] = images
            out.append(message)
        elif role == "assistant":
            out.append(_assistant(item, names, param))
        elif role == "tool":
            call_id = validate.string(item.get("tool_call_id"), f"{param}.tool_call_id") or ""
            message = {
                "role": "tool",
                "content": flatten_text(item.get("content"), provider="ollama", param=f"{param}.content"),
            }
            name = validate.string(item.get("name"), f"{param}.name") or names.get(call_id)
            if name:
                message["tool_name"] = name
            if call_id:
                message["tool_call_id"] = call_id
            out.append(message)
        else:
            raise InvalidRequestError(
                f"Ollama backends do not accept messages with role {clean_text(repr(role))[:50]}", f"{param}.role"
            )
    return out


def _assistant(item: dict, names: dict[str, str], param: str) -> dict:
    text = flatten_text(item.get("content"), provider="ollama", param=f"{param}.content")
    message: dict = {"role": "assistant", "content": text}
    reasoning = validate.string(item.get("reasoning_content"), f"{param}.reasoning_content")
    if reasoning is None:
        reasoning = validate.string(item.get("reasoning"), f"{param}.reasoning")
    if reasoning:
        message["thinking"] = reasoning
    calls = []
    for index, call in enumerate(validate.array(item.get("tool_calls"), f"{param}.tool_calls") or ()):
        call_param = f"{param}.tool_calls[{index}]"
        validate.mapping(call, call_param, required=True)
        function = validate.mapping(call.get("function"), f"{call_param}.function") or {}
        name = validate.string(function.get("name"), f"{call_param}.function.name") or ""
        entry: dict = {"function": {"name": name, "arguments": _arguments(function.get("arguments"), call_param)}}
        call_id = validate.string(call.get("id"), f"{call_param}.id")
        if call_id:
            entry["id"] = call_id
            names[call_id] = name
        calls.append(entry)
    if calls:
        message["tool_calls"] = calls
    return message


def _arguments(value, param: str) -> dict:
    """OpenAI's JSON-string arguments -> the JSON object Ollama expects."""
    if isinstance(value, dict):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    param = f"{param}.function.arguments"
    if not isinstance(value, str):
        raise validate.invalid(param, "a JSON object string", value)
    try:
        parsed = parse_json(value)
    except ValueError:
        raise InvalidRequestError("tool call arguments must be a JSON object string", param) from None
    if not isinstance(parsed, dict):
        raise InvalidRequestError("tool call arguments must be a JSON object string", param)
    return parsed


def _user_content(content, param: str) -> tuple[str, list[str]]:
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        raise validate.invalid(param, "a string or an array of content parts", content)
    texts, images = [], []
    for index, part in enumerate(content):
        part_param = f"{param}[{index}]"
        kind = content_part_type(part, part_param)
        if kind == "text":
            texts.append(validate.string(part.get("text"), f"{part_param}.text", required=True))
        elif kind == "image_url":
            url, _ = image_url(part, part_param)
            images.append(_image_base64(url, f"{part_param}.image_url"))
        else:
            logger.warning("ollama: dropped a %r content part Ollama does not accept", clean_text(kind)[:50])
    return "\n".join(texts), images


def _image_base64(url: str, param: str) -> str:
    header, _, data = url.partition(",")
    if not url.startswith("data:") or not data or not header.endswith(";base64"):
        raise InvalidRequestError("Ollama accepts images only as base64 data URLs (data:image/...;base64,...)", param)
    return data


def embed_body(payload: dict) -> dict:
    model, _, dimensions = embedding_options(payload)
    texts = embedding_texts(payload)
    body: dict = {"model": model, "input": texts}
    if dimensions:
        body["dimensions"] = dimensions
    truncate = validate.boolean(payload.get("truncate"), "truncate")
    if truncate is not None:
        body["truncate"] = truncate
    keep_alive = _keep_alive(payload.get("keep_alive"))
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    options = validate.mapping(payload.get("options"), "options")
    if options is not None:
        body["options"] = options
    return body
