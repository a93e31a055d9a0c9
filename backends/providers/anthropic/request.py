"""OpenAI chat request -> Anthropic Messages request (``providers.md`` §2.2, §6.1).

Pure functions over plain dicts. Anything the client sent that Anthropic cannot express is
either refused with ``InvalidRequestError`` (the gateway answers 400 naming the field) when dropping it would change
the answer, or dropped with one warning per request when it is only a tuning knob.
"""

from __future__ import annotations

import json
import logging
import re

from backends.providers import validate
from backends.providers.anthropic import structured
from backends.providers.base import InvalidRequestError, clean_text, parse_json
from backends.providers.content import TRANSLATED_FIELDS

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 4096
# OpenAI ``reasoning_effort`` -> Anthropic ``thinking.budget_tokens`` (LiteLLM's constants, but
# never below Anthropic's minimum budget of 1024).
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192}
MIN_THINKING_BUDGET = 1024
# OpenAI ``tool_choice`` strings -> Anthropic ``tool_choice.type`` (a named function becomes ``tool``).
TOOL_CHOICE_TYPES = {"auto": "auto", "none": "none", "required": "any"}

# Top-level OpenAI fields this module reads. Any other field is dropped with a warning.
HANDLED_FIELDS = TRANSLATED_FIELDS | {
    "temperature",
    "top_p",
    "top_k",
    "parallel_tool_calls",
    "user",
    "metadata",
    "thinking",
    "response_format",
}
THINKING_BLOCK_KEYS = {"thinking": ("type", "thinking", "signature"), "redacted_thinking": ("type", "data")}
_DATA_URL = re.compile(r"^data:(?P<media>[\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)


def default_max_tokens() -> int:
    """``ELDRIC_ANTHROPIC_DEFAULT_MAX_TOKENS`` when Django is configured, else 4096."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        value = getattr(settings, "ELDRIC_ANTHROPIC_DEFAULT_MAX_TOKENS", DEFAULT_MAX_TOKENS)
    except ImproperlyConfigured:  # settings not configured: the adapter is used outside Django
        return DEFAULT_MAX_TOKENS
    return value if isinstance(value, int) and value > 0 else DEFAULT_MAX_TOKENS


def build_body(payload: dict) -> dict:
    """The Anthropic ``/v1/messages`` body for an OpenAI chat completion payload."""
    model, items = validate.chat_basics(payload)
    dropped = sorted(
        clean_text(key) for key, value in payload.items() if key not in HANDLED_FIELDS and value is not None
    )
    n = validate.integer(payload.get("n"), "n", minimum=1)
    if n is not None and n > 1:
        raise InvalidRequestError("n > 1 is not supported by Anthropic backends; send one request per choice", "n")
    system, messages = convert_messages(items)
    body: dict = {"model": model}
    max_tokens = validate.max_tokens(payload)
    thinking = _thinking(payload, max_tokens)
    if max_tokens is None:
        max_tokens = default_max_tokens()
        # With thinking on, the default is room for the answer; the budget comes on top of it.
        if thinking and thinking.get("type") == "enabled":
            max_tokens += thinking.get("budget_tokens") or 0
    body["max_tokens"] = max_tokens
    body["messages"] = messages
    if system:
        body["system"] = system
    if thinking:
        body["thinking"] = thinking
    _copy_sampling(payload, body)
    stop = _stop_sequences(payload.get("stop"), dropped)
    if stop:
        body["stop_sequences"] = stop
    user_id = _user_id(payload)
    if user_id:
        body["metadata"] = {"user_id": user_id}
    tools = validate.array(payload.get("tools"), "tools")
    parallel = validate.boolean(payload.get("parallel_tool_calls"), "parallel_tool_calls")
    if tools:
        body["tools"] = [convert_tool(tool, f"tools[{index}]") for index, tool in enumerate(tools)]
        choice = convert_tool_choice(payload.get("tool_choice"), parallel)
        if choice:
            body["tool_choice"] = choice
    elif payload.get("tool_choice") not in (None, "none", "auto"):
        convert_tool_choice(payload.get("tool_choice"), None)  # checked, then dropped: no tools to choose
        dropped.append("tool_choice")
    response_tool = structured.response_tool(payload)
    if response_tool is not None:
        structured.apply(response_tool, payload, body)
    if payload.get("stream") is True:
        body["stream"] = True
    validate.include_usage(payload)
    if dropped:
        logger.warning("anthropic: dropped request fields Anthropic has no equivalent for: %s", ", ".join(dropped))
    return body


def _thinking(payload: dict, max_tokens: int | None) -> dict | None:
    native = validate.mapping(payload.get("thinking"), "thinking")
    if native is not None:
        validate.string(native.get("type"), "thinking.type", required=True)
        validate.integer(native.get("budget_tokens"), "thinking.budget_tokens", minimum=0)
        return native
    effort = validate.string(payload.get("reasoning_effort"), "reasoning_effort")
    if effort is None or effort == "none":
        return None
    budget = THINKING_BUDGETS.get(effort)
    if budget is None:
        raise InvalidRequestError(
            f"unsupported reasoning_effort {clean_text(repr(effort))[:50]}; use one of {', '.join(THINKING_BUDGETS)}",
            "reasoning_effort",
        )
    if max_tokens is not None and budget >= max_tokens:
        # Anthropic requires budget_tokens < max_tokens; shrink the budget to fit.
        budget = max_tokens - 1
        if budget < MIN_THINKING_BUDGET:
            raise InvalidRequestError(
                f"reasoning_effort needs max_tokens above {MIN_THINKING_BUDGET} on Anthropic backends "
                f"(thinking budgets start at {MIN_THINKING_BUDGET} tokens)",
                "max_tokens",
            )
    return {"type": "enabled", "budget_tokens": budget}


def _copy_sampling(payload: dict, body: dict) -> None:
    # OpenAI allows temperature 0-2, Anthropic 0-1 (values above 1 are clamped below).
    temperature = validate.number(payload.get("temperature"), "temperature", minimum=0, maximum=2)
    if temperature is not None:
        if temperature > 1:
            logger.warning("anthropic: temperature %s clamped to 1.0 (Anthropic's maximum)", temperature)
            temperature = 1.0
        body["temperature"] = temperature
    top_p = validate.number(payload.get("top_p"), "top_p", minimum=0, maximum=1)
    if top_p is not None:
        body["top_p"] = top_p
    top_k = validate.integer(payload.get("top_k"), "top_k", minimum=0)
    if top_k is not None:
        body["top_k"] = top_k


def _stop_sequences(stop, dropped: list[str]) -> list[str]:
    values = validate.stop_sequences(stop)
    kept = [value for value in values if value.strip()]
    if len(kept) != len(values):
        # Anthropic rejects whitespace-only stop sequences.
        dropped.append("stop (whitespace-only sequences)")
    return kept


def _user_id(payload: dict) -> str | None:
    metadata = validate.mapping(payload.get("metadata"), "metadata")
    if metadata is not None:
        user_id = validate.string(metadata.get("user_id"), "metadata.user_id")
        if user_id:
            return user_id
    return validate.string(payload.get("user"), "user") or None


# --- tools ------------------------------------------------------------------------------------


def convert_tool(tool, param: str = "tools[0]") -> dict:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function" or "function" not in tool:
        kind = tool.get("type") if isinstance(tool, dict) else validate.kind(tool)
        raise InvalidRequestError(
            f"tool type {clean_text(repr(kind))[:50]} is not supported by Anthropic backends; use function tools", param
        )
    function = tool["function"]
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise InvalidRequestError("every tool needs a function name", f"{param}.function.name")
    description = validate.string(function.get("description"), f"{param}.function.description")
    schema = validate.mapping(function.get("parameters"), f"{param}.function.parameters")
    schema = dict(schema) if schema is not None else {"type": "object", "properties": {}}
    schema.setdefault("type", "object")
    converted: dict = {"name": function["name"]}
    if description:
        converted["description"] = description
    converted["input_schema"] = schema
    if isinstance(tool.get("cache_control"), dict):
        converted["cache_control"] = tool["cache_control"]
    return converted


def convert_tool_choice(choice, parallel) -> dict | None:
    if choice is None:
        converted = None
    elif isinstance(choice, str) and choice in TOOL_CHOICE_TYPES:
        converted = {"type": TOOL_CHOICE_TYPES[choice]}
        if choice == "none":
            return converted
    elif (
        isinstance(choice, dict)
        and isinstance(choice.get("function"), dict)
        and isinstance(choice["function"].get("name"), str)
        and choice["function"]["name"]
    ):
        converted = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise InvalidRequestError(
            f"unsupported tool_choice ({validate.kind(choice)}); use auto, none, required or a named function",
            "tool_choice",
        )
    if parallel is False:
        converted = converted or {"type": "auto"}
        converted["disable_parallel_tool_use"] = True
    return converted


# --- messages ---------------------------------------------------------------------------------


def convert_messages(messages: list) -> tuple[list[dict], list[dict]]:
    """OpenAI messages -> (Anthropic ``system`` blocks, alternating user/assistant turns)."""
    system: list[dict] = []
    turns: list[dict] = []
    for position, message in enumerate(messages):
        param = f"messages[{position}]"
        if not isinstance(message, dict):
            raise validate.invalid(param, "an object", message)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), f"{param}.content"))
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), f"{param}.content"))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, param))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, param)])
        else:
            raise InvalidRequestError(
                f"{param}: role {clean_text(repr(role))[:50]} is not supported by Anthropic backends", f"{param}.role"
            )
    if not turns:
        raise InvalidRequestError(
            "Anthropic needs at least one user or assistant message besides the system prompt", "messages"
        )
    for turn in turns:
        if turn["role"] == "user":
            # Anthropic wants the tool results first in a user turn, any text after them.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    _trim_final_assistant(turns)
    return system, turns


def _append(turns: list[dict], role: str, blocks: list[dict]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _trim_final_assistant(turns: list[dict]) -> None:
    """Anthropic rejects a final (prefill) assistant turn ending in whitespace."""
    last = turns[-1]
    if last["role"] != "assistant" or last["content"][-1]["type"] != "text":
        return
    text = last["content"][-1]["text"].rstrip()
    if text:
        last["content"][-1]["text"] = text
    else:
        last["content"].pop()
        if not last["content"]:
            turns.pop()


def _text_block(text: str, part: dict | None = None) -> dict:
    block = {"type": "text", "text": text}
    if part is not None and isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _part_kind(part):
    return part.get("type") if isinstance(part, dict) else None


def _text_blocks(content, param: str) -> list[dict]:
    """System, developer and assistant content: text only (empty text is skipped)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    if not isinstance(content, list):
        raise validate.invalid(param, "a string or an array of parts", content)
    blocks = []
    for index, part in enumerate(content):
        kind = _part_kind(part)
        if kind == "text":
            text = validate.string(part.get("text"), f"{param}[{index}].text", required=True)
            if text:
                blocks.append(_text_block(text, part))
        elif kind == "refusal":
            refusal = validate.string(part.get("refusal"), f"{param}[{index}].refusal", required=True)
            if refusal:
                blocks.append(_text_block(refusal))
        else:
            raise _unsupported_part(kind, f"{param}[{index}]", "here")
    return blocks


def _unsupported_part(kind, param: str, where: str) -> InvalidRequestError:
    name = clean_text(repr(kind))[:50] if isinstance(kind, str) else "without a string type"
    return InvalidRequestError(f"{param}: content part {name} is not supported {where}", param)


def _user_blocks(content, param: str) -> list[dict]:
    if isinstance(content, str) or content is None:
        return _text_blocks(content, param)
    if not isinstance(content, list):
        raise validate.invalid(param, "a string or an array of parts", content)
    blocks = []
    for index, part in enumerate(content):
        part_param = f"{param}[{index}]"
        kind = _part_kind(part)
        if kind == "text":
            text = validate.string(part.get("text"), f"{part_param}.text", required=True)
            if text:
                blocks.append(_text_block(text, part))
        elif kind == "image_url":
            blocks.append(_image_block(part, part_param))
        elif kind == "file":
            blocks.append(_document_block(part, part_param))
        else:
            raise _unsupported_part(kind, part_param, "by Anthropic backends")
    return blocks


def _image_block(part: dict, param: str) -> dict:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequestError(f"{param}: image_url part without a url", f"{param}.image_url")
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            raise InvalidRequestError(
                f"{param}: image data URL must be base64 (data:<type>;base64,...)", f"{param}.image_url"
            )
        source = {"type": "base64", "media_type": match["media"], "data": match["data"]}
    elif url.startswith(("http://", "https://")):
        source = {"type": "url", "url": url}
    else:
        raise InvalidRequestError(f"{param}: image URL must be http(s) or a data URL", f"{param}.image_url")
    block = {"type": "image", "source": source}
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _document_block(part: dict, param: str) -> dict:
    file = part.get("file") if isinstance(part.get("file"), dict) else {}
    data = file.get("file_data")
    match = _DATA_URL.match(data) if isinstance(data, str) else None
    if match is None or match["media"] != "application/pdf":
        raise InvalidRequestError(
            f"{param}: only PDF files given inline as base64 file_data are supported", f"{param}.file"
        )
    return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": match["data"]}}


def _assistant_blocks(message: dict, param: str) -> list[dict]:
    blocks = _thinking_blocks(message, param)
    blocks.extend(_text_blocks(message.get("content"), f"{param}.content"))
    calls = validate.array(message.get("tool_calls"), f"{param}.tool_calls") or ()
    for index, call in enumerate(calls):
        blocks.append(_tool_use(call, f"{param}.tool_calls[{index}]"))
    return blocks


def _thinking_blocks(message: dict, param: str) -> list[dict]:
    """Replay the ``thinking_blocks`` a previous answer carried, signatures included."""
    given = message.get("thinking_blocks")
    if not given:
        if message.get("reasoning_content"):
            # Anthropic only accepts thinking it signed; unsigned reasoning cannot go back.
            logger.warning("anthropic: %s.reasoning_content dropped (no thinking_blocks with a signature)", param)
        return []
    param = f"{param}.thinking_blocks"
    if not isinstance(given, list):
        raise validate.invalid(param, "an array", given)
    blocks = []
    for index, block in enumerate(given):
        kind = block.get("type") if isinstance(block, dict) else None
        keys = THINKING_BLOCK_KEYS.get(kind) if isinstance(kind, str) else None
        if keys is None:
            raise InvalidRequestError(f"{param}: expected thinking or redacted_thinking blocks", f"{param}[{index}]")
        if kind == "thinking":
            validate.string(block.get("thinking"), f"{param}[{index}].thinking")
            if not isinstance(block.get("signature"), str) or not block["signature"]:
                raise InvalidRequestError(f"{param}: a thinking block has no signature", f"{param}[{index}].signature")
        else:
            validate.string(block.get("data"), f"{param}[{index}].data")
        blocks.append({key: block[key] for key in keys if key in block})
    return blocks


def _tool_use(call, param: str) -> dict:
    function = call.get("function") if isinstance(call, dict) else None
    if (
        not isinstance(function, dict)
        or not isinstance(call.get("id"), str)
        or not call["id"]
        or not isinstance(function.get("name"), str)
        or not function["name"]
    ):
        raise InvalidRequestError(f"{param}: each call needs an id and a function name", param)
    arguments = function.get("arguments")
    arguments_param = f"{param}.function.arguments"
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        tool_input = {}
    elif isinstance(arguments, dict):
        tool_input = arguments
    elif not isinstance(arguments, str):
        raise validate.invalid(arguments_param, "a JSON object string", arguments)
    else:
        try:
            tool_input = parse_json(arguments)
        except ValueError:
            raise InvalidRequestError(
                f"{param}: function.arguments is not valid JSON "
                f"(Anthropic needs the arguments as a JSON object): {clean_text(arguments[:100])!r}",
                arguments_param,
            ) from None
        if not isinstance(tool_input, dict):
            raise InvalidRequestError(f"{param}: function.arguments must be a JSON object", arguments_param)
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": tool_input}


def _tool_result(message: dict, param: str) -> dict:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise InvalidRequestError(f"{param}: a tool message needs tool_call_id", f"{param}.tool_call_id")
    block: dict = {"type": "tool_result", "tool_use_id": tool_call_id}
    content = message.get("content")
    if isinstance(content, list):
        parts = _user_blocks(content, f"{param}.content")
        if parts:
            block["content"] = parts
    elif isinstance(content, str) and content:
        block["content"] = content
    elif content not in (None, ""):
        # A number or object from a lenient client: sent as its JSON text.
        try:
            block["content"] = json.dumps(content)
        except (ValueError, RecursionError):
            raise validate.invalid(f"{param}.content", "a string or an array of parts", content) from None
    return block
