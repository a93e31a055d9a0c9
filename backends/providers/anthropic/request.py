"""OpenAI chat request -> Anthropic Messages request (``providers.md`` §2.2, §6.1).

Pure functions over plain dicts. Anything the client sent that Anthropic cannot express is
either refused with ``ProviderError`` (the gateway answers 400) when dropping it would change
the answer, or dropped with one warning per request when it is only a tuning knob.
"""

from __future__ import annotations

import json
import logging
import re

from backends.providers.base import ProviderError
from backends.providers.content import TRANSLATED_FIELDS

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 4096
# OpenAI ``reasoning_effort`` -> Anthropic ``thinking.budget_tokens`` (LiteLLM's constants, but
# never below Anthropic's minimum budget of 1024).
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096, "xhigh": 8192}
MIN_THINKING_BUDGET = 1024

# Top-level OpenAI fields this module reads. Any other field is dropped with a warning.
HANDLED_FIELDS = TRANSLATED_FIELDS | {
    "temperature",
    "top_p",
    "top_k",
    "parallel_tool_calls",
    "user",
    "metadata",
    "thinking",
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
    dropped = sorted(key for key in payload if key not in HANDLED_FIELDS and payload[key] is not None)
    n = payload.get("n")
    if isinstance(n, int) and n > 1:
        raise ProviderError("n > 1 is not supported by Anthropic backends; send one request per choice")
    system, messages = convert_messages(payload["messages"])
    body: dict = {"model": payload["model"]}
    max_tokens = _client_max_tokens(payload)
    thinking = _thinking(payload, max_tokens)
    if max_tokens is None:
        max_tokens = default_max_tokens()
        # With thinking on, the default is room for the answer; the budget comes on top of it.
        if thinking and thinking.get("type") == "enabled":
            max_tokens += int(thinking.get("budget_tokens") or 0)
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
    tools = payload.get("tools")
    if tools:
        body["tools"] = [convert_tool(tool) for tool in tools]
        choice = convert_tool_choice(payload.get("tool_choice"), payload.get("parallel_tool_calls"))
        if choice:
            body["tool_choice"] = choice
    elif payload.get("tool_choice") not in (None, "none", "auto"):
        dropped.append("tool_choice")
    if payload.get("stream") is True:
        body["stream"] = True
    if dropped:
        logger.warning("anthropic: dropped request fields Anthropic has no equivalent for: %s", ", ".join(dropped))
    return body


def _client_max_tokens(payload: dict) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = payload.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ProviderError(f"'{key}' must be a positive integer")
        return value
    return None


def _thinking(payload: dict, max_tokens: int | None) -> dict | None:
    native = payload.get("thinking")
    if isinstance(native, dict):
        return native
    effort = payload.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    budget = THINKING_BUDGETS.get(effort)
    if budget is None:
        raise ProviderError(f"unsupported reasoning_effort {effort!r}; use one of {', '.join(THINKING_BUDGETS)}")
    if max_tokens is not None and budget >= max_tokens:
        # Anthropic requires budget_tokens < max_tokens; shrink the budget to fit.
        budget = max_tokens - 1
        if budget < MIN_THINKING_BUDGET:
            raise ProviderError(
                f"reasoning_effort needs max_tokens above {MIN_THINKING_BUDGET} on Anthropic backends "
                f"(thinking budgets start at {MIN_THINKING_BUDGET} tokens)"
            )
    return {"type": "enabled", "budget_tokens": budget}


def _copy_sampling(payload: dict, body: dict) -> None:
    temperature = payload.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        if temperature > 1:
            # OpenAI allows 0-2, Anthropic 0-1.
            logger.warning("anthropic: temperature %s clamped to 1.0 (Anthropic's maximum)", temperature)
            temperature = 1.0
        body["temperature"] = temperature
    for key in ("top_p", "top_k"):
        value = payload.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            body[key] = value


def _stop_sequences(stop, dropped: list[str]) -> list[str]:
    if stop is None:
        return []
    values = [stop] if isinstance(stop, str) else list(stop) if isinstance(stop, list) else []
    kept = [value for value in values if isinstance(value, str) and value.strip()]
    if len(kept) != len(values):
        # Anthropic rejects whitespace-only stop sequences.
        dropped.append("stop (whitespace-only sequences)")
    return kept


def _user_id(payload: dict) -> str | None:
    metadata = payload.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str) and metadata["user_id"]:
        return metadata["user_id"]
    user = payload.get("user")
    return user if isinstance(user, str) and user else None


# --- tools ------------------------------------------------------------------------------------


def convert_tool(tool) -> dict:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function" or "function" not in tool:
        kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
        raise ProviderError(f"tool type {kind!r} is not supported by Anthropic backends; use function tools")
    function = tool["function"]
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise ProviderError("every tool needs a function name")
    schema = function.get("parameters")
    schema = dict(schema) if isinstance(schema, dict) else {"type": "object", "properties": {}}
    schema.setdefault("type", "object")
    converted: dict = {"name": function["name"]}
    if function.get("description"):
        converted["description"] = function["description"]
    converted["input_schema"] = schema
    if isinstance(tool.get("cache_control"), dict):
        converted["cache_control"] = tool["cache_control"]
    return converted


def convert_tool_choice(choice, parallel) -> dict | None:
    if choice is None:
        converted = None
    elif choice == "auto":
        converted = {"type": "auto"}
    elif choice == "none":
        return {"type": "none"}
    elif choice == "required":
        converted = {"type": "any"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        converted = {"type": "tool", "name": choice["function"]["name"]}
    else:
        raise ProviderError(f"unsupported tool_choice {json.dumps(choice)[:100]}")
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
        if not isinstance(message, dict):
            raise ProviderError(f"messages[{position}] must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), position))
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), position))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, position))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, position)])
        else:
            raise ProviderError(f"messages[{position}]: role {role!r} is not supported by Anthropic backends")
    if not turns:
        raise ProviderError("Anthropic needs at least one user or assistant message besides the system prompt")
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


def _text_blocks(content, position: int) -> list[dict]:
    """System, developer and assistant content: text only (empty text is skipped)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [_text_block(content)] if content else []
    if not isinstance(content, list):
        raise ProviderError(f"messages[{position}].content must be a string or an array of parts")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append(_text_block(part["text"], part))
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            if part["refusal"]:
                blocks.append(_text_block(part["refusal"]))
        else:
            raise ProviderError(f"messages[{position}]: content part {kind!r} is not supported here")
    return blocks


def _user_blocks(content, position: int) -> list[dict]:
    if isinstance(content, str) or content is None:
        return _text_blocks(content, position)
    if not isinstance(content, list):
        raise ProviderError(f"messages[{position}].content must be a string or an array of parts")
    blocks = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append(_text_block(part["text"], part))
        elif kind == "image_url":
            blocks.append(_image_block(part, position))
        elif kind == "file":
            blocks.append(_document_block(part, position))
        else:
            raise ProviderError(f"messages[{position}]: content part {kind!r} is not supported by Anthropic backends")
    return blocks


def _image_block(part: dict, position: int) -> dict:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise ProviderError(f"messages[{position}]: image_url part without a url")
    if url.startswith("data:"):
        match = _DATA_URL.match(url)
        if match is None:
            raise ProviderError(f"messages[{position}]: image data URL must be base64 (data:<type>;base64,...)")
        source = {"type": "base64", "media_type": match["media"], "data": match["data"]}
    elif url.startswith(("http://", "https://")):
        source = {"type": "url", "url": url}
    else:
        raise ProviderError(f"messages[{position}]: image URL must be http(s) or a data URL")
    block = {"type": "image", "source": source}
    if isinstance(part.get("cache_control"), dict):
        block["cache_control"] = part["cache_control"]
    return block


def _document_block(part: dict, position: int) -> dict:
    file = part.get("file") if isinstance(part.get("file"), dict) else {}
    match = _DATA_URL.match(file.get("file_data") or "")
    if match is None or match["media"] != "application/pdf":
        raise ProviderError(f"messages[{position}]: only PDF files given inline as base64 file_data are supported")
    return {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": match["data"]}}


def _assistant_blocks(message: dict, position: int) -> list[dict]:
    blocks = _thinking_blocks(message, position)
    blocks.extend(_text_blocks(message.get("content"), position))
    for call in message.get("tool_calls") or ():
        blocks.append(_tool_use(call, position))
    return blocks


def _thinking_blocks(message: dict, position: int) -> list[dict]:
    """Replay the ``thinking_blocks`` a previous answer carried, signatures included."""
    given = message.get("thinking_blocks")
    if not given:
        if message.get("reasoning_content"):
            # Anthropic only accepts thinking it signed; unsigned reasoning cannot go back.
            logger.warning(
                "anthropic: messages[%d].reasoning_content dropped (no thinking_blocks with a signature)", position
            )
        return []
    if not isinstance(given, list):
        raise ProviderError(f"messages[{position}].thinking_blocks must be an array")
    blocks = []
    for block in given:
        keys = THINKING_BLOCK_KEYS.get(block.get("type")) if isinstance(block, dict) else None
        if keys is None:
            raise ProviderError(f"messages[{position}].thinking_blocks: expected thinking or redacted_thinking blocks")
        if block["type"] == "thinking" and not block.get("signature"):
            raise ProviderError(f"messages[{position}].thinking_blocks: a thinking block has no signature")
        blocks.append({key: block[key] for key in keys if key in block})
    return blocks


def _tool_use(call, position: int) -> dict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not call.get("id") or not function.get("name"):
        raise ProviderError(f"messages[{position}].tool_calls: each call needs an id and a function name")
    arguments = function.get("arguments")
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        tool_input = {}
    elif isinstance(arguments, dict):
        tool_input = arguments
    else:
        try:
            tool_input = json.loads(arguments)
        except (TypeError, ValueError):
            raise ProviderError(
                f"messages[{position}].tool_calls[{call['id']}]: function.arguments is not valid JSON "
                f"(Anthropic needs the arguments as a JSON object): {str(arguments)[:100]!r}"
            ) from None
        if not isinstance(tool_input, dict):
            raise ProviderError(
                f"messages[{position}].tool_calls[{call['id']}]: function.arguments must be a JSON object"
            )
    return {"type": "tool_use", "id": call["id"], "name": function["name"], "input": tool_input}


def _tool_result(message: dict, position: int) -> dict:
    tool_call_id = message.get("tool_call_id")
    if not isinstance(tool_call_id, str) or not tool_call_id:
        raise ProviderError(f"messages[{position}]: a tool message needs tool_call_id")
    block: dict = {"type": "tool_result", "tool_use_id": tool_call_id}
    content = message.get("content")
    if isinstance(content, list):
        parts = _user_blocks(content, position)
        if parts:
            block["content"] = parts
    elif isinstance(content, str) and content:
        block["content"] = content
    elif content not in (None, ""):
        block["content"] = json.dumps(content)
    return block
