"""OpenAI Responses request -> validated payload -> OpenAI chat completion request.

Sans-IO: pure functions over dicts. ``validate_responses`` checks what every backend needs
(a passthrough backend gets the client's bytes, so only the types the gateway itself reads are
checked there). ``to_openai_chat`` is for the backends that do not speak the Responses API:
what cannot be carried is refused (a 400, because dropping it would change the answer:
built-in tools, files, background runs, stored prompts) or dropped and named in the ``dropped``
set the caller passes, so the handler logs each field once per backend.
"""

from __future__ import annotations

import json

from backends.providers import validate
from backends.providers.base import InvalidRequestError, clean_text

# Top-level fields the translation carries (or honours itself: ``store``, ``metadata`` and
# ``previous_response_id`` are the gateway's, ``stream`` is the relay's).
CARRIED_FIELDS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "metadata",
        "store",
        "stream",
        "previous_response_id",
        "parallel_tool_calls",
        "user",
        "stream_options",
    }
)
# Fields that change what the answer is: a translated backend cannot honour them, so it refuses.
REFUSED_FIELDS = {
    "background": "background runs",
    "conversation": "conversations",
    "prompt": "stored prompts",
}
# Chat's roles for Responses' message roles: "developer" is OpenAI's newer name for "system",
# which every adapter knows.
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
TOOL_CHOICE_MODES = frozenset({"auto", "none", "required"})
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})


class ResponsesRequestError(InvalidRequestError):
    """A request the Responses ingress refuses with a 400 in OpenAI's shape."""


def validate_responses(payload: dict) -> str:
    """The model, once the fields the gateway reads have the right types; raises
    ``ResponsesRequestError`` (naming the field) otherwise."""
    try:
        model = validate.string(payload.get("model"), "model", required=True, nonempty=True)
        if len(model) > 256:
            raise ResponsesRequestError("'model' is longer than 256 characters", "model")
        value = payload.get("input")
        if value is not None and not isinstance(value, (str, list)):
            raise validate.invalid("input", "a string or an array of input items", value)
        validate.string(payload.get("instructions"), "instructions")
        validate.boolean(payload.get("stream"), "stream")
        validate.boolean(payload.get("store"), "store")
        validate.string(payload.get("previous_response_id"), "previous_response_id", nonempty=True)
        metadata = validate.mapping(payload.get("metadata"), "metadata")
        for key, item in (metadata or {}).items():
            validate.string(item, f"metadata.{key}", required=True)
        validate.array(payload.get("tools"), "tools")
        validate.integer(payload.get("max_output_tokens"), "max_output_tokens", minimum=1)
        validate.number(payload.get("temperature"), "temperature", minimum=0, maximum=2)
        validate.number(payload.get("top_p"), "top_p", minimum=0, maximum=1)
    except ResponsesRequestError:
        raise
    except InvalidRequestError as exc:
        raise ResponsesRequestError(str(exc), exc.param) from None
    return model


def input_items(payload: dict) -> list:
    """The request's ``input`` as a list of items (a string is one user message)."""
    value = payload.get("input")
    if value is None:
        return []
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}]
    return value


def to_openai_chat(payload: dict, history: list, dropped: set[str]) -> dict:
    """The chat completion request for ``payload``, after the items of earlier turns
    (``history``: stored input and output items of the previous response, or [])."""
    try:
        return _translate(payload, history, dropped)
    except ResponsesRequestError:
        raise
    except InvalidRequestError as exc:
        raise ResponsesRequestError(str(exc), exc.param) from None


def _translate(payload: dict, history: list, dropped: set[str]) -> dict:
    for field, what in REFUSED_FIELDS.items():
        if payload.get(field) not in (None, False):
            raise ResponsesRequestError(f"'{field}' ({what}) is not supported by this model's backend", field)
    for field in payload:
        if field not in CARRIED_FIELDS and field not in REFUSED_FIELDS:
            dropped.add(field)
    messages: list[dict] = []
    instructions = payload.get("instructions")
    if instructions:
        messages.append({"role": "system", "content": instructions})
    items = input_items(payload)
    # History items were validated when they were stored; their params name the earlier turn.
    _items_to_messages(history, messages, dropped, "previous_response_id")
    _items_to_messages(items, messages, dropped, "input")
    if not messages:
        raise ResponsesRequestError("'input' must not be empty", "input")
    chat: dict = {"model": payload["model"], "messages": messages}
    tools = _tools(payload.get("tools"))
    if tools:
        chat["tools"] = tools
    choice = _tool_choice(payload.get("tool_choice"))
    if choice is not None:
        chat["tool_choice"] = choice
    parallel = validate.boolean(payload.get("parallel_tool_calls"), "parallel_tool_calls")
    if parallel is not None and tools:
        chat["parallel_tool_calls"] = parallel
    response_format = _response_format(payload.get("text"), dropped)
    if response_format is not None:
        chat["response_format"] = response_format
    effort = _reasoning_effort(payload.get("reasoning"), dropped)
    if effort is not None:
        chat["reasoning_effort"] = effort
    for source, target in (("max_output_tokens", "max_tokens"), ("temperature", "temperature"), ("top_p", "top_p")):
        if payload.get(source) is not None:
            chat[target] = payload[source]
    user = validate.string(payload.get("user"), "user")
    if user:
        chat["user"] = user
    if payload.get("stream") is True:
        # The translation needs the usage chunk for ``response.completed`` whatever the client asked.
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


# --- input items --------------------------------------------------------------------------------


def _items_to_messages(items: list, messages: list[dict], dropped: set[str], where: str) -> None:
    for index, item in enumerate(items):
        param = f"{where}[{index}]"
        validate.mapping(item, param, required=True)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            _message(item, param, messages)
        elif kind == "function_call":
            _function_call(item, param, messages)
        elif kind == "function_call_output":
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": validate.string(item.get("call_id"), f"{param}.call_id", required=True),
                    "content": _tool_output(item.get("output"), f"{param}.output"),
                }
            )
        elif kind == "reasoning":
            # A reasoning item only replays the model's thoughts; chat backends have no place for it.
            dropped.add(f"{where}.reasoning")
        elif isinstance(kind, str):
            raise ResponsesRequestError(
                f"input items of type '{clean_text(kind)[:64]}' are not supported by this model's backend",
                f"{param}.type",
            )
        else:
            raise validate.invalid(f"{param}.type", "a string", kind)


def _message(item: dict, param: str, messages: list[dict]) -> None:
    role = item.get("role")
    if role not in ROLES:
        raise ResponsesRequestError(f"'{param}.role' must be one of {', '.join(sorted(ROLES))}", f"{param}.role")
    content = item.get("content")
    if isinstance(content, str):
        messages.append({"role": ROLES[role], "content": content})
        return
    validate.array(content, f"{param}.content", required=True)
    parts: list[dict] = []
    for index, part in enumerate(content):
        parts.append(_part(part, f"{param}.content[{index}]"))
    if ROLES[role] != "user" or all(part["type"] == "text" for part in parts):
        # Only user messages take images in chat; text parts join into the string every adapter reads.
        if any(part["type"] != "text" for part in parts):
            raise ResponsesRequestError(f"'{param}.content': images are only supported in user messages", param)
        messages.append({"role": ROLES[role], "content": "".join(part["text"] for part in parts)})
        return
    messages.append({"role": "user", "content": parts})


def _part(part, param: str) -> dict:
    validate.mapping(part, param, required=True)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": validate.string(part.get("text"), f"{param}.text", required=True)}
    if kind == "refusal":
        return {"type": "text", "text": validate.string(part.get("refusal"), f"{param}.refusal", required=True)}
    if kind == "input_image":
        url = validate.string(part.get("image_url"), f"{param}.image_url")
        if not url:
            # A file id names an upload in OpenAI's file store, which other backends cannot read.
            raise ResponsesRequestError(f"'{param}': only images given by 'image_url' are supported", param)
        image = {"url": url}
        detail = validate.choice(part.get("detail"), f"{param}.detail", {"auto", "low", "high", "original"})
        if detail in ("low", "high"):
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}
    if isinstance(kind, str):
        raise ResponsesRequestError(
            f"content parts of type '{clean_text(kind)[:64]}' are not supported by this model's backend",
            f"{param}.type",
        )
    raise validate.invalid(f"{param}.type", "a string", kind)


def _function_call(item: dict, param: str, messages: list[dict]) -> None:
    call = {
        "id": validate.string(item.get("call_id"), f"{param}.call_id", required=True, nonempty=True),
        "type": "function",
        "function": {
            "name": validate.string(item.get("name"), f"{param}.name", required=True, nonempty=True),
            "arguments": validate.string(item.get("arguments"), f"{param}.arguments", required=True),
        },
    }
    last = messages[-1] if messages else None
    # Consecutive calls (and a call right after the assistant's text) are one assistant turn in chat.
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if not last.get("content"):
            last["content"] = None
        return
    messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _tool_output(value, param: str) -> str:
    if isinstance(value, str):
        return value
    parts = validate.array(value, param, required=True)
    texts = []
    for index, part in enumerate(parts):
        validate.mapping(part, f"{param}[{index}]", required=True)
        if part.get("type") != "input_text":
            raise ResponsesRequestError(f"'{param}[{index}]': only text tool outputs are supported", param)
        texts.append(validate.string(part.get("text"), f"{param}[{index}].text", required=True))
    return "".join(texts)


# --- tools and formats --------------------------------------------------------------------------


def _tools(value) -> list[dict]:
    tools = []
    for index, tool in enumerate(validate.array(value, "tools") or ()):
        param = f"tools[{index}]"
        validate.mapping(tool, param, required=True)
        kind = tool.get("type")
        if kind != "function":
            # Built-in tools (web search, file search, code interpreter, MCP…) run at OpenAI.
            what = clean_text(kind)[:64] if isinstance(kind, str) else validate.kind(kind)
            raise ResponsesRequestError(f"the built-in tool '{what}' is not supported by this model's backend", param)
        function = {"name": validate.string(tool.get("name"), f"{param}.name", required=True, nonempty=True)}
        description = validate.string(tool.get("description"), f"{param}.description")
        if description:
            function["description"] = description
        parameters = validate.mapping(tool.get("parameters"), f"{param}.parameters")
        function["parameters"] = parameters if parameters is not None else {"type": "object", "properties": {}}
        strict = validate.boolean(tool.get("strict"), f"{param}.strict")
        if strict is not None:
            function["strict"] = strict
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value):
    if value is None:
        return None
    if isinstance(value, str):
        if value not in TOOL_CHOICE_MODES:
            raise ResponsesRequestError("'tool_choice' must be one of auto, none, required", "tool_choice")
        return value
    validate.mapping(value, "tool_choice", required=True)
    if value.get("type") == "function":
        name = validate.string(value.get("name"), "tool_choice.name", required=True, nonempty=True)
        return {"type": "function", "function": {"name": name}}
    raise ResponsesRequestError("'tool_choice' may only name a function for this model's backend", "tool_choice")


def _response_format(value, dropped: set[str]) -> dict | None:
    text = validate.mapping(value, "text")
    if not text:
        return None
    for key in text:
        if key != "format":
            dropped.add(f"text.{key}")
    fmt = validate.mapping(text.get("format"), "text.format")
    if fmt is None:
        return None
    kind = validate.choice(fmt.get("type"), "text.format.type", {"text", "json_object", "json_schema"})
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {
            "name": validate.string(fmt.get("name"), "text.format.name", required=True, nonempty=True),
            "schema": validate.mapping(fmt.get("schema"), "text.format.schema", required=True),
        }
        description = validate.string(fmt.get("description"), "text.format.description")
        if description:
            schema["description"] = description
        strict = validate.boolean(fmt.get("strict"), "text.format.strict")
        if strict is not None:
            schema["strict"] = strict
        return {"type": "json_schema", "json_schema": schema}
    return None


def _reasoning_effort(value, dropped: set[str]) -> str | None:
    reasoning = validate.mapping(value, "reasoning")
    if not reasoning:
        return None
    for key in reasoning:
        if key != "effort":
            dropped.add(f"reasoning.{key}")
    return validate.choice(reasoning.get("effort"), "reasoning.effort", EFFORTS)


def history_of(stored: dict) -> list:
    """The items a stored response hands to the next turn: its input, then its output."""
    return list(stored.get("input_items") or ()) + list(stored.get("output_items") or ())


def native_body(payload: dict, history: list) -> bytes:
    """The client's request for a backend that speaks the Responses API, with a previous
    response the gateway stored spelled out as input (that backend never saw its id)."""
    rewritten = {key: value for key, value in payload.items() if key != "previous_response_id"}
    rewritten["input"] = [_portable(item) for item in history if _replayable(item)] + input_items(payload)
    return json.dumps(rewritten, ensure_ascii=False).encode()


def _replayable(item) -> bool:
    # Reasoning the gateway stored came from another backend's chat answer: OpenAI only takes
    # back its own (signed) reasoning items.
    return isinstance(item, dict) and item.get("type") != "reasoning"


def _portable(item: dict) -> dict:
    """A stored item without the gateway's own ids, which the Responses backend never issued."""
    return {key: value for key, value in item.items() if key not in ("id", "status")}
