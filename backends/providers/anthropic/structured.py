"""OpenAI ``response_format`` on Anthropic backends, carried as a forced tool.

The decision: Anthropic has two ways to make Claude answer in a JSON schema. Its native
structured outputs (``output_config.format``, earlier ``output_format`` behind the
``structured-outputs-2025-11-13`` beta) exist only on the newest models, and an older model
answers 400; a gateway that sends it would fail for every Claude 3.x / 4.0 backend, and there
is no recorded transcript of it to build against. A tool whose ``input_schema`` is the
client's schema, forced with ``tool_choice: {"type": "tool", "name": ...}``, works on every
model Anthropic serves, is what LiteLLM does (``providers.md`` §6, the ``response_format``
row), and rests on the same tool-use wire format the recordings show
(``messages_parallel_tool_use``, ``messages_stream_parallel_tool_use``). So the gateway
sends a forced tool, and turns the tool's ``input`` back into the assistant message
``content`` (a JSON string) with ``finish_reason: "stop"`` and no ``tool_calls``; in a stream
the tool's ``input_json_delta`` fragments become ``delta.content``.

The variants:

* ``json_schema`` with a schema: the tool's ``input_schema`` is that schema, which must be an
  object schema (Anthropic tool inputs are objects; OpenAI's structured outputs require an
  object root too). The tool is named after ``json_schema.name``.
* ``json_object``, or ``json_schema`` without a schema: a permissive object schema.
* ``text``: nothing to carry. Any other type is refused (400, ``param: response_format``).
* With the client's own ``tools``: ``tool_choice`` absent or ``auto`` offers the client's tools
  *and* the response tool with ``tool_choice: {"type": "any", "disable_parallel_tool_use":
  true}``: Claude either calls one of the client's tools (answered as ``tool_calls``, as
  usual) or answers through the response tool. ``none`` forces the response tool.
  ``required`` or a named function means the client wants a tool call now; that is sent as
  usual and the schema waits for a later turn (no response tool is offered).
* Extended thinking (``thinking`` or ``reasoning_effort``) cannot be combined: Anthropic
  refuses a forced ``tool_choice`` while thinking is on, so the gateway answers 400 first.
* A response tool whose name is also one of the client's tools is refused (400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from backends.providers import validate
from backends.providers.base import InvalidRequestError, clean_text

# Anthropic's tool-name rule.
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DEFAULT_TOOL_NAME = "json_response"
PERMISSIVE_SCHEMA = {"type": "object", "additionalProperties": True}
DESCRIPTION = (
    "Give your final answer by calling this tool. Its input is the answer itself and must match "
    "the input schema exactly; do not answer in prose."
)


@dataclass(frozen=True, slots=True)
class ResponseTool:
    """The synthetic tool that carries the client's ``response_format``."""

    name: str
    schema: dict
    description: str

    def as_tool(self) -> dict:
        return {"name": self.name, "description": self.description, "input_schema": self.schema}


def response_tool(payload: dict) -> ResponseTool | None:
    """The tool to force for this request, or None when the answer is free text or a client tool
    call. Raises ``InvalidRequestError`` for a ``response_format`` Anthropic backends cannot carry."""
    value = validate.mapping(payload.get("response_format"), "response_format")
    if value is None:
        return None
    kind = validate.string(value.get("type"), "response_format.type", required=True)
    if kind == "text":
        return None
    if kind == "json_object":
        tool = ResponseTool(DEFAULT_TOOL_NAME, dict(PERMISSIVE_SCHEMA), DESCRIPTION)
    elif kind == "json_schema":
        tool = _schema_tool(validate.mapping(value.get("json_schema"), "response_format.json_schema") or {})
    else:
        raise InvalidRequestError(
            f"response_format type {clean_text(repr(kind))[:50]} is not supported by anthropic backends; "
            "use text, json_object or json_schema",
            "response_format",
        )
    tools = validate.array(payload.get("tools"), "tools") or ()
    choice = payload.get("tool_choice")
    if tools and (choice == "required" or isinstance(choice, dict)):
        return None  # the client asked for one of its own tools now
    if _thinking_on(payload):
        raise InvalidRequestError(
            "response_format cannot be combined with extended thinking (thinking or reasoning_effort) on "
            "anthropic backends: the answer is forced through a tool, which Anthropic refuses while thinking is on",
            "response_format",
        )
    client_names = {_client_tool_name(item) for item in tools}
    if tool.name in client_names:
        raise InvalidRequestError(
            f"response_format.json_schema.name {tool.name!r} is also the name of one of the tools; "
            "anthropic backends carry the response format as a tool, so the names must differ",
            "response_format.json_schema.name",
        )
    return tool


def _client_tool_name(tool) -> str | None:
    function = tool.get("function") if isinstance(tool, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def _schema_tool(spec: dict) -> ResponseTool:
    name = validate.string(spec.get("name"), "response_format.json_schema.name")
    if name is not None and not TOOL_NAME.match(name):
        raise InvalidRequestError(
            "response_format.json_schema.name must be 1-64 letters, digits, underscores or dashes",
            "response_format.json_schema.name",
        )
    description = validate.string(spec.get("description"), "response_format.json_schema.description")
    schema = validate.mapping(spec.get("schema"), "response_format.json_schema.schema")
    if schema is None:
        schema = dict(PERMISSIVE_SCHEMA)
    else:
        schema = dict(schema)
        if "type" not in schema and "properties" in schema:
            schema["type"] = "object"
        if schema.get("type") != "object":
            raise InvalidRequestError(
                'response_format.json_schema.schema must be an object schema ("type": "object") on anthropic '
                "backends, which carry it as a tool input",
                "response_format.json_schema.schema",
            )
    text = f"{description}\n\n{DESCRIPTION}" if description else DESCRIPTION
    return ResponseTool(name or DEFAULT_TOOL_NAME, schema, text)


def _thinking_on(payload: dict) -> bool:
    thinking = payload.get("thinking")
    if isinstance(thinking, dict):
        return thinking.get("type") not in (None, "disabled")
    effort = payload.get("reasoning_effort")
    return isinstance(effort, str) and effort != "none"


def apply(tool: ResponseTool, payload: dict, body: dict) -> None:
    """Add the response tool to an Anthropic body built without it, and force it."""
    client_tools = body.get("tools") or []
    body["tools"] = [*client_tools, tool.as_tool()]
    if client_tools and payload.get("tool_choice") in (None, "auto"):
        # One call: either a client tool (a normal tool turn) or the answer itself.
        body["tool_choice"] = {"type": "any", "disable_parallel_tool_use": True}
    else:
        body["tool_choice"] = {"type": "tool", "name": tool.name}


def answer_tool_name(payload) -> str | None:
    """The response tool's name for a request that was translated with one; never raises (the
    request side already validated the payload)."""
    if not isinstance(payload, dict):
        return None
    try:
        tool = response_tool(payload)
    except InvalidRequestError:
        return None
    return tool.name if tool is not None else None
