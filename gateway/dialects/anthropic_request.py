"""Anthropic Messages request -> validated payload -> OpenAI chat completion request.

Sans-IO: pure functions over bytes and dicts. The translation tables are the Anthropic
adapter's (``backends/providers/anthropic``), read backwards, so the two directions cannot
drift apart. What cannot be carried to an OpenAI-shaped backend is either refused (a 400 in
Anthropic's shape, because dropping it would change the answer: server tools, images inside
tool results, file ids) or dropped and named in the ``dropped`` set the caller passes, so the
handler can log each field once per backend.
"""

from __future__ import annotations

import json
import math

from backends.providers import validate
from backends.providers.anthropic.request import THINKING_BUDGETS, TOOL_CHOICE_TYPES
from backends.providers.base import InvalidRequestError, clean_text, parse_json

ROLES = frozenset({"user", "assistant"})
# Anthropic ``tool_choice.type`` -> OpenAI ``tool_choice`` (``tool`` becomes a named function).
TOOL_CHOICES = {anthropic: openai for openai, anthropic in TOOL_CHOICE_TYPES.items()}
# Efforts every OpenAI reasoning model accepts ("minimal" and "xhigh" are model-specific).
COMMON_EFFORTS = ("low", "medium", "high")
# ``thinking.budget_tokens`` -> ``reasoning_effort``, largest budget first: the effort whose
# budget is the largest one not above the client's (the lowest effort below all of them).
EFFORT_BUDGETS = sorted(
    ((budget, effort) for effort, budget in THINKING_BUDGETS.items() if effort in COMMON_EFFORTS), reverse=True
)
# Top-level fields the translation to OpenAI chat reads; anything else is dropped and recorded.
CARRIED_FIELDS = frozenset(
    {
        "model",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "metadata",
    }
)
# Tool types that are client tools (the client runs them); every other type is a server tool.
CLIENT_TOOL_TYPES = frozenset({"custom"})


class MessagesRequestError(InvalidRequestError):
    """A request the Messages ingress refuses: rendered as Anthropic's 400 ``invalid_request_error``."""

    status = 400

    def body(self) -> bytes:
        from gateway.dialects.anthropic_answer import anthropic_error_body

        return anthropic_error_body("invalid_request_error", str(self))


def _refuse(message: str, param: str | None = None) -> MessagesRequestError:
    return MessagesRequestError(clean_text(message), param)


# --- parsing and validation -------------------------------------------------------------------


def parse_messages(body: bytes, *, count_tokens: bool = False) -> tuple[dict, str]:
    """The request as a validated dict, and its model; ``MessagesRequestError`` otherwise.

    Validation checks types and the shape of the blocks it knows, and lets unknown block types
    and fields through: a passthrough to Anthropic must not refuse what Anthropic accepts.
    ``count_tokens`` validates a ``/v1/messages/count_tokens`` body (no ``max_tokens``).
    """
    try:
        payload = parse_json(body)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise _refuse("the request body is not valid JSON") from None
    try:
        model = _validate(payload, count_tokens)
    except MessagesRequestError:
        raise
    except InvalidRequestError as exc:
        raise _refuse(str(exc), exc.param) from None
    return payload, model


def _validate(payload, count_tokens: bool) -> str:
    if not isinstance(payload, dict):
        raise _refuse(f"the request body must be a JSON object, got {validate.kind(payload)}")
    model = validate.string(payload.get("model"), "model", required=True, nonempty=True)
    if not count_tokens:
        if payload.get("max_tokens") is None:
            raise _refuse("max_tokens: Field required", "max_tokens")
        validate.integer(payload["max_tokens"], "max_tokens", minimum=1)
    elif payload.get("max_tokens") is not None:
        validate.integer(payload["max_tokens"], "max_tokens", minimum=1)
    messages = validate.array(payload.get("messages"), "messages", required=True)
    for index, message in enumerate(messages):
        _validate_message(message, f"messages.{index}")
    _validate_system(payload.get("system"))
    validate.boolean(payload.get("stream"), "stream")
    validate.number(payload.get("temperature"), "temperature", minimum=0, maximum=1)
    validate.number(payload.get("top_p"), "top_p", minimum=0, maximum=1)
    validate.integer(payload.get("top_k"), "top_k", minimum=0)
    stops = validate.array(payload.get("stop_sequences"), "stop_sequences") or ()
    for index, stop in enumerate(stops):
        validate.string(stop, f"stop_sequences.{index}", required=True)
    metadata = validate.mapping(payload.get("metadata"), "metadata")
    if metadata is not None:
        validate.string(metadata.get("user_id"), "metadata.user_id")
    tools = validate.array(payload.get("tools"), "tools") or ()
    for index, tool in enumerate(tools):
        _validate_tool(tool, f"tools.{index}")
    _validate_tool_choice(payload.get("tool_choice"))
    thinking = validate.mapping(payload.get("thinking"), "thinking")
    if thinking is not None:
        kind = validate.string(thinking.get("type"), "thinking.type", required=True)
        budget = validate.integer(thinking.get("budget_tokens"), "thinking.budget_tokens", minimum=1)
        if kind == "enabled" and budget is None:
            raise _refuse("thinking.enabled.budget_tokens: Field required", "thinking.budget_tokens")
    return model


def _validate_system(system) -> None:
    if system is None or isinstance(system, str):
        return
    blocks = validate.array(system, "system")
    if blocks is None:
        raise validate.invalid("system", "a string or an array of text blocks", system)
    for index, block in enumerate(blocks):
        param = f"system.{index}"
        kind = _block_type(block, param)
        if kind != "text":
            raise _refuse(f"{param}: system blocks must be text blocks, got {clean_text(kind)[:50]!r}", param)
        validate.string(block.get("text"), f"{param}.text", required=True)


def _block_type(block, param: str) -> str:
    if not isinstance(block, dict):
        raise validate.invalid(param, "an object", block)
    return validate.string(block.get("type"), f"{param}.type", required=True, nonempty=True)


def _validate_message(message, param: str) -> None:
    validate.mapping(message, param, required=True)
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise _refuse(f"{param}.role: Input should be 'user' or 'assistant'", f"{param}.role")
    content = message.get("content")
    if isinstance(content, str):
        return
    blocks = validate.array(content, f"{param}.content")
    if blocks is None:
        raise validate.invalid(f"{param}.content", "a string or an array of content blocks", content)
    for index, block in enumerate(blocks):
        _validate_block(block, f"{param}.content.{index}")


def _validate_block(block, param: str) -> None:
    kind = _block_type(block, param)
    if kind == "text":
        validate.string(block.get("text"), f"{param}.text", required=True)
    elif kind in ("image", "document"):
        source = validate.mapping(block.get("source"), f"{param}.source", required=True)
        source_type = validate.string(source.get("type"), f"{param}.source.type", required=True)
        if source_type == "base64":
            validate.string(source.get("media_type"), f"{param}.source.media_type", required=True, nonempty=True)
            validate.string(source.get("data"), f"{param}.source.data", required=True)
        elif source_type == "url":
            validate.string(source.get("url"), f"{param}.source.url", required=True, nonempty=True)
    elif kind == "tool_use":
        validate.string(block.get("id"), f"{param}.id", required=True, nonempty=True)
        validate.string(block.get("name"), f"{param}.name", required=True, nonempty=True)
        validate.mapping(block.get("input"), f"{param}.input", required=True)
    elif kind == "tool_result":
        validate.string(block.get("tool_use_id"), f"{param}.tool_use_id", required=True, nonempty=True)
        validate.boolean(block.get("is_error"), f"{param}.is_error")
        content = block.get("content")
        if content is not None and not isinstance(content, str):
            parts = validate.array(content, f"{param}.content")
            if parts is None:
                raise validate.invalid(f"{param}.content", "a string or an array of content blocks", content)
            for index, part in enumerate(parts):
                _validate_block(part, f"{param}.content.{index}")
    elif kind == "thinking":
        validate.string(block.get("thinking"), f"{param}.thinking", required=True)
        validate.string(block.get("signature"), f"{param}.signature")
    elif kind == "redacted_thinking":
        validate.string(block.get("data"), f"{param}.data", required=True)


def _validate_tool(tool, param: str) -> None:
    validate.mapping(tool, param, required=True)
    validate.string(tool.get("name"), f"{param}.name", required=True, nonempty=True)
    kind = validate.string(tool.get("type"), f"{param}.type")
    if kind is None or kind in CLIENT_TOOL_TYPES:
        validate.string(tool.get("description"), f"{param}.description")
        validate.mapping(tool.get("input_schema"), f"{param}.input_schema", required=True)


def _validate_tool_choice(choice) -> None:
    if choice is None:
        return
    validate.mapping(choice, "tool_choice", required=True)
    kind = validate.choice(choice.get("type"), "tool_choice.type", {*TOOL_CHOICES, "tool"})
    if kind is None:
        raise _refuse("tool_choice.type: Field required", "tool_choice.type")
    if kind == "tool":
        validate.string(choice.get("name"), "tool_choice.name", required=True, nonempty=True)
    validate.boolean(choice.get("disable_parallel_tool_use"), "tool_choice.disable_parallel_tool_use")


# --- Anthropic -> OpenAI chat -----------------------------------------------------------------


def to_openai_chat(payload: dict, dropped: set[str] | None = None) -> dict:
    """The OpenAI chat completion request for a payload ``parse_messages`` accepted.

    Field paths that could not be carried are added to ``dropped`` (generalised, e.g.
    ``messages.content.cache_control``), so they are logged once each, not once per message.
    """
    notes: set[str] = set() if dropped is None else dropped
    try:
        return _to_chat(payload, notes)
    except MessagesRequestError:
        raise
    except InvalidRequestError as exc:
        raise _refuse(str(exc), exc.param) from None
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError):
        # Only reachable with a payload parse_messages did not validate.
        raise _refuse("the request does not have the shape of an Anthropic Messages request") from None


def _to_chat(payload: dict, notes: set[str]) -> dict:
    notes.update(clean_text(key) for key, value in payload.items() if key not in CARRIED_FIELDS and value is not None)
    messages: list[dict] = []
    system = _system(payload.get("system"), notes)
    if system is not None:
        messages.append({"role": "system", "content": system})
    for index, message in enumerate(payload["messages"]):
        if message["role"] == "user":
            messages.extend(_user_messages(message["content"], f"messages.{index}", notes))
        else:
            messages.append(_assistant_message(message["content"], f"messages.{index}", notes))
    chat: dict = {"model": payload["model"], "messages": messages}
    if payload.get("max_tokens") is not None:
        chat["max_tokens"] = payload["max_tokens"]
    for field in ("temperature", "top_p", "top_k"):
        if payload.get(field) is not None:
            chat[field] = payload[field]
    if payload.get("stop_sequences"):
        chat["stop"] = list(payload["stop_sequences"])
    _metadata(payload.get("metadata"), chat, notes)
    _thinking(payload.get("thinking"), chat, notes)
    tools = payload.get("tools")
    if tools:
        chat["tools"] = [_tool(tool, f"tools.{index}", notes) for index, tool in enumerate(tools)]
        _tool_choice(payload.get("tool_choice"), chat)
    elif payload.get("tool_choice") is not None:
        notes.add("tool_choice")  # nothing to choose from
    if payload.get("stream") is True:
        chat["stream"] = True
        # The translated stream ends with message_delta usage: ask the upstream for it.
        chat["stream_options"] = {"include_usage": True}
    return chat


def _note_cache_control(block: dict, path: str, notes: set[str]) -> None:
    if block.get("cache_control") is not None:
        notes.add(f"{path}.cache_control")


def _system(system, notes: set[str]):
    if system is None or isinstance(system, str):
        return system or None
    parts = []
    for block in system:
        _note_cache_control(block, "system", notes)
        if block["text"]:
            parts.append({"type": "text", "text": block["text"]})
    if not parts:
        return None
    return parts[0]["text"] if len(parts) == 1 else parts


def _user_messages(content, param: str, notes: set[str]) -> list[dict]:
    """One Anthropic user turn -> ``tool`` messages (its tool results, first) and a user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages, parts = [], []
    for index, block in enumerate(content):
        block_param = f"{param}.content.{index}"
        _note_cache_control(block, "messages.content", notes)
        if block["type"] == "tool_result":
            tool_messages.append(_tool_message(block, block_param, notes))
        else:
            part = _user_part(block, block_param, notes)
            if part is not None:
                parts.append(part)
    messages = tool_messages
    if parts:
        messages.append({"role": "user", "content": parts})
    return messages


def _user_part(block: dict, param: str, notes: set[str]) -> dict | None:
    kind = block["type"]
    if kind == "text":
        _note_citations(block, notes)
        return {"type": "text", "text": block["text"]} if block["text"] else None
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": _image_url(block["source"], param)}}
    if kind == "document":
        return _document_part(block, param)
    if kind in ("thinking", "redacted_thinking"):
        notes.add(f"messages.content.{kind}")
        return None
    raise _refuse(
        f"{param}: content block type {clean_text(kind)[:50]!r} cannot be carried to this backend "
        "(it is not an Anthropic backend)",
        f"{param}.type",
    )


def _note_citations(block: dict, notes: set[str]) -> None:
    if block.get("citations"):
        notes.add("messages.content.citations")


def _image_url(source: dict, param: str) -> str:
    """The inverse of the adapter's ``_image_block``: base64 -> data URL, url -> url."""
    kind = source.get("type")
    if kind == "base64":
        return f"data:{source['media_type']};base64,{source['data']}"
    if kind == "url":
        return source["url"]
    raise _refuse(
        f"{param}.source: image source {clean_text(repr(kind))[:50]} cannot be carried to this backend; "
        "send the image as base64 or a URL",
        f"{param}.source.type",
    )


def _document_part(block: dict, param: str) -> dict:
    """The inverse of the adapter's ``_document_block``: only inline base64 PDFs travel."""
    source = block["source"]
    if source.get("type") != "base64" or source.get("media_type") != "application/pdf":
        raise _refuse(f"{param}: only documents given as base64 PDF can be carried to this backend", f"{param}.source")
    data_url = f"data:application/pdf;base64,{source['data']}"
    return {"type": "file", "file": {"filename": "document.pdf", "file_data": data_url}}


def _tool_message(block: dict, param: str, notes: set[str]) -> dict:
    """A ``tool_result`` block -> an OpenAI ``tool`` message (text only: OpenAI has no images there)."""
    if block.get("is_error") is True:
        notes.add("messages.content.tool_result.is_error")
    content = block.get("content")
    if content is None or isinstance(content, str):
        return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": content or ""}
    texts = []
    for index, part in enumerate(content):
        if part["type"] != "text":
            raise _refuse(
                f"{param}.content.{index}: a tool_result can only carry text to this backend "
                f"(got {clean_text(part['type'])[:50]!r})",
                f"{param}.content.{index}.type",
            )
        _note_cache_control(part, "messages.content.tool_result.content", notes)
        texts.append({"type": "text", "text": part["text"]})
    if len(texts) == 1:
        return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": texts[0]["text"]}
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": texts}


def _assistant_message(content, param: str, notes: set[str]) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts, calls = [], []
    for index, block in enumerate(content):
        kind = block["type"]
        _note_cache_control(block, "messages.content", notes)
        if kind == "text":
            _note_citations(block, notes)
            if block["text"]:
                texts.append({"type": "text", "text": block["text"]})
        elif kind == "tool_use":
            calls.append(_tool_call(block, f"{param}.content.{index}"))
        elif kind in ("thinking", "redacted_thinking"):
            # Only Anthropic reads (signed) thinking back; other backends never saw it.
            notes.add(f"messages.content.{kind}")
        else:
            raise _refuse(
                f"{param}.content.{index}: content block type {clean_text(kind)[:50]!r} cannot be carried "
                "to this backend (it is not an Anthropic backend)",
                f"{param}.content.{index}.type",
            )
    message: dict = {"role": "assistant"}
    if len(texts) == 1:
        message["content"] = texts[0]["text"]
    else:
        message["content"] = texts or (None if calls else "")
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: dict, param: str) -> dict:
    try:
        arguments = json.dumps(block["input"], ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        raise _refuse(f"{param}.input cannot be written as JSON", f"{param}.input") from None
    return {"id": block["id"], "type": "function", "function": {"name": block["name"], "arguments": arguments}}


def _tool(tool: dict, param: str, notes: set[str]) -> dict:
    kind = tool.get("type")
    if kind is not None and kind not in CLIENT_TOOL_TYPES:
        raise _refuse(
            f"{param}: {clean_text(kind)[:60]!r} is an Anthropic server tool; only client tools "
            "(name, description, input_schema) can be carried to this backend",
            f"{param}.type",
        )
    _note_cache_control(tool, "tools", notes)
    function: dict = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool["input_schema"]
    return {"type": "function", "function": function}


def _tool_choice(choice, chat: dict) -> None:
    if choice is None:
        return
    kind = choice["type"]
    if kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        chat["tool_choice"] = TOOL_CHOICES[kind]
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        chat["parallel_tool_calls"] = False


def _metadata(metadata, chat: dict, notes: set[str]) -> None:
    if not metadata:
        return
    if metadata.get("user_id"):
        chat["user"] = metadata["user_id"]
    if any(key != "user_id" for key in metadata):
        notes.add("metadata")


def _thinking(thinking, chat: dict, notes: set[str]) -> None:
    if thinking is None or thinking.get("type") == "disabled":
        return
    budget = thinking.get("budget_tokens")
    if thinking.get("type") != "enabled" or budget is None:
        notes.add("thinking")
        return
    effort = EFFORT_BUDGETS[-1][1]
    for floor, name in EFFORT_BUDGETS:
        if budget >= floor:
            effort = name
            break
    chat["reasoning_effort"] = effort


# --- count_tokens -----------------------------------------------------------------------------

# Bytes of UTF-8 text per token: the usual rule of thumb for English prose and code.
BYTES_PER_TOKEN = 4
# Anthropic's documented cost of an image at its largest size before resizing (~1.15 megapixels).
IMAGE_TOKENS = 1600
# A PDF page is billed as text plus an image; without a PDF parser, count one page.
DOCUMENT_TOKENS = 1600 + 600
# Anthropic's documented tool-use system prompt (tool_choice auto/none: 346, any/tool: 313).
TOOLS_SYSTEM_TOKENS = 346
# Role markers and turn separators of each message.
MESSAGE_TOKENS = 3


def count_tokens_estimate(payload: dict) -> int:
    """An estimate of the prompt tokens for a non-Anthropic backend (``/v1/messages/count_tokens``).

    ``ceil(UTF-8 bytes / 4)`` over all text (system, message text, tool inputs and results, tool
    definitions as JSON) plus 1600 per image, 2200 per document, 3 per message and, when tools are
    given, 346 for the tool-use instructions. Payload as ``parse_messages(..., count_tokens=True)``
    accepted it.
    """
    text_bytes = 0
    fixed = 0

    def text(value) -> None:
        nonlocal text_bytes
        if isinstance(value, str):
            text_bytes += len(value.encode("utf-8", "replace"))

    def blocks(content) -> None:
        nonlocal fixed
        if isinstance(content, str):
            text(content)
            return
        for block in content if isinstance(content, list) else ():
            kind = block.get("type") if isinstance(block, dict) else None
            if kind == "image":
                fixed += IMAGE_TOKENS
            elif kind == "document":
                fixed += DOCUMENT_TOKENS
            elif kind == "tool_use":
                text(block.get("name"))
                text(_json_text(block.get("input")))
            elif kind == "tool_result":
                blocks(block.get("content"))
            elif isinstance(block, dict):
                text(block.get("text"))
                text(block.get("thinking"))

    blocks(payload.get("system"))
    for message in payload.get("messages") or ():
        fixed += MESSAGE_TOKENS
        blocks(message.get("content") if isinstance(message, dict) else None)
    tools = payload.get("tools") or ()
    if tools:
        fixed += TOOLS_SYSTEM_TOKENS
        for tool in tools:
            text(_json_text(tool))
    return max(1, math.ceil(text_bytes / BYTES_PER_TOKEN) + fixed)


def _json_text(value) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        return ""
