"""A fake Anthropic Messages API built from the recordings in tests/fixtures/recorded/anthropic.

Every behaviour here first checks that the request is one Anthropic would accept (headers,
required fields, block structure; rules from ``providers.md`` §2.1-2.2) and answers 400 in
Anthropic's own error shape when it is not, so a translation bug fails the test loudly
instead of replaying a happy answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from aiohttp import web

from tests.fakes import recordings
from tests.fakes.server import Behaviour, reply_bytes, reply_stream

PROVIDER = "anthropic"
VERSION = "2023-06-01"
TOP_LEVEL_FIELDS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "stream",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "output_config",
        "container",
        "mcp_servers",
        "context_management",
    }
)
USER_BLOCKS = frozenset({"text", "image", "document", "tool_result"})
ASSISTANT_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})


def error_body(kind: str, message: str) -> bytes:
    return json.dumps(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake0000000000"}
    ).encode()


def request_problems(headers: dict[str, str], raw: bytes) -> list[str]:
    """What Anthropic would reject in this ``POST /v1/messages``; empty when it is acceptable."""
    lowered = {name.lower(): value for name, value in headers.items()}
    problems = []
    if not lowered.get("x-api-key"):
        problems.append("x-api-key header is required")
    if lowered.get("anthropic-version") != VERSION:
        problems.append("anthropic-version header is required")
    if "application/json" not in lowered.get("content-type", ""):
        problems.append("content-type must be application/json")
    try:
        body = json.loads(raw)
    except ValueError:
        return [*problems, "body is not JSON"]
    if not isinstance(body, dict):
        return [*problems, "body must be an object"]
    problems += [f"{key}: Extra inputs are not permitted" for key in body if key not in TOP_LEVEL_FIELDS]
    if not isinstance(body.get("model"), str):
        problems.append("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        problems.append("max_tokens: Field required")
    problems += _system_problems(body.get("system"))
    problems += _messages_problems(body.get("messages"), has_tools=bool(body.get("tools")))
    problems += _tool_problems(body)
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        problems.append("temperature: Input should be less than or equal to 1")
    for sequence in body.get("stop_sequences") or ():
        if not isinstance(sequence, str) or not sequence.strip():
            problems.append("stop_sequences: each stop sequence must contain non-whitespace")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            problems.append("thinking.budget_tokens: Input should be greater than or equal to 1024")
        elif isinstance(max_tokens, int) and budget >= max_tokens:
            problems.append("`max_tokens` must be greater than `thinking.budget_tokens`")
    return problems


def _system_problems(system) -> list[str]:
    if system is None or isinstance(system, str):
        return []
    if not isinstance(system, list):
        return ["system: Input should be a valid string or list"]
    return [
        "system: blocks must be non-empty text blocks"
        for block in system
        if not isinstance(block, dict) or block.get("type") != "text" or not block.get("text")
    ]


def _messages_problems(messages, *, has_tools: bool) -> list[str]:
    if not isinstance(messages, list) or not messages:
        return ["messages: at least one message is required"]
    problems = []
    previous_role = None
    pending_tool_uses: set[str] = set()
    for position, message in enumerate(messages):
        where = f"messages.{position}"
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            problems.append(f"{where}.role: Input should be 'user' or 'assistant'")
            continue
        if role == previous_role:
            problems.append(f"{where}: roles must alternate between 'user' and 'assistant'")
        previous_role = role
        blocks = _blocks(message.get("content"))
        if blocks is None:
            problems.append(f"{where}.content: must be a non-empty string or a list of blocks")
            continue
        kinds = [block.get("type") for block in blocks]
        allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
        problems += [
            f"{where}: {kind!r} blocks are not allowed in a {role} turn" for kind in kinds if kind not in allowed
        ]
        problems += [
            f"{where}: text content blocks must be non-empty"
            for b in blocks
            if b.get("type") == "text" and not b.get("text")
        ]
        if role == "user":
            results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if pending_tool_uses - results:
                problems.append(
                    f"{where}: tool_use ids were found without tool_result blocks immediately after: "
                    + ", ".join(sorted(pending_tool_uses - results))
                )
            if results - pending_tool_uses:
                problems.append(f"{where}: unexpected tool_use_id found in tool_result blocks")
            if "text" in kinds and "tool_result" in kinds:
                last_result = max(i for i, kind in enumerate(kinds) if kind == "tool_result")
                if kinds.index("text") < last_result:
                    problems.append(f"{where}: tool_result blocks must come before any text")
            problems += _image_problems(where, blocks)
            pending_tool_uses = set()
        else:
            if pending_tool_uses:
                problems.append(f"{where}: tool_use blocks must be answered by tool_result in the next user turn")
            problems += _assistant_problems(where, blocks)
            pending_tool_uses = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
        if ("tool_use" in kinds or "tool_result" in kinds) and not has_tools:
            problems.append(f"{where}: requests with tool_use or tool_result blocks must define tools")
    return problems


def _blocks(content) -> list[dict] | None:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else None
    if not isinstance(content, list) or not content or not all(isinstance(b, dict) for b in content):
        return None
    return content


def _image_problems(where: str, blocks: list[dict]) -> list[str]:
    problems = []
    for block in blocks:
        if block.get("type") != "image":
            continue
        source = block.get("source") or {}
        if source.get("type") == "base64":
            if not source.get("media_type", "").startswith("image/") or not source.get("data"):
                problems.append(f"{where}: image base64 source needs media_type and data")
        elif source.get("type") == "url":
            if not str(source.get("url", "")).startswith(("http://", "https://")):
                problems.append(f"{where}: image url source needs an http(s) url")
        else:
            problems.append(f"{where}: image source type must be base64 or url")
    return problems


def _assistant_problems(where: str, blocks: list[dict]) -> list[str]:
    problems = []
    seen_other = False
    for block in blocks:
        kind = block.get("type")
        if kind in ("thinking", "redacted_thinking"):
            if seen_other:
                problems.append(f"{where}: thinking blocks must come first in an assistant turn")
            if kind == "thinking" and not block.get("signature"):
                problems.append(f"{where}: thinking.signature: Field required")
            extra = set(block) - ({"type", "thinking", "signature"} if kind == "thinking" else {"type", "data"})
            if extra:
                problems.append(f"{where}: {kind}.{sorted(extra)[0]}: Extra inputs are not permitted")
        else:
            seen_other = True
        if kind == "tool_use" and (
            not block.get("id") or not block.get("name") or not isinstance(block.get("input"), dict)
        ):
            problems.append(f"{where}: tool_use blocks need id, name and an input object")
    return problems


def _tool_problems(body: dict) -> list[str]:
    problems = []
    for tool in body.get("tools") or ():
        schema = tool.get("input_schema") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not tool.get("name") or not isinstance(schema, dict):
            problems.append("tools: each tool needs name and input_schema")
        elif schema.get("type") != "object":
            problems.append("tools.input_schema.type: Input should be 'object'")
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
            problems.append("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        elif choice["type"] == "tool" and not choice.get("name"):
            problems.append("tool_choice.name: Field required")
        elif choice["type"] == "tool" and choice["name"] not in {t.get("name") for t in body.get("tools") or ()}:
            problems.append(f"tool_choice: tool {choice['name']!r} not found in tools")
        elif choice["type"] in ("any", "tool") and (body.get("thinking") or {}).get("type") == "enabled":
            problems.append("Thinking may not be enabled when tool_choice forces tool use.")
        if "disable_parallel_tool_use" in choice and not isinstance(choice["disable_parallel_tool_use"], bool):
            problems.append("tool_choice.disable_parallel_tool_use: Input should be a valid boolean")
    return problems


# --- behaviours -------------------------------------------------------------------------------


def validated(inner: Behaviour) -> Behaviour:
    """Answer 400 like Anthropic when the request breaks its rules, else run ``inner``."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        problems = request_problems(dict(request.headers), await request.read())
        if problems:
            return web.Response(
                body=error_body("invalid_request_error", "; ".join(problems)),
                status=400,
                content_type="application/json",
            )
        return await inner(request)

    return behaviour


def in_sequence(*behaviours: Behaviour) -> Behaviour:
    """Each call gets the next behaviour; the last one repeats."""
    remaining: Iterator[Behaviour] = iter(behaviours)
    current = [behaviours[0]]

    async def behaviour(request: web.Request) -> web.StreamResponse:
        current[0] = next(remaining, current[0])
        return await current[0](request)

    return behaviour


def recorded(name: str, index: int | None = None, **stream_options) -> Behaviour:
    """Replay one recorded answer (JSON, or SSE frame by frame), after validating the request."""
    body = recordings.response(PROVIDER, name, index)
    stem = f"{name}.{index}" if index is not None else name
    if recordings.path(PROVIDER, f"{stem}.response.sse").exists():
        return validated(reply_stream(recordings.sse_frames(body), **stream_options))
    return validated(reply_bytes(body))


def conversation(name: str, turns: int) -> Behaviour:
    """A multi-turn recording: the Nth request gets the Nth recorded answer."""
    return in_sequence(*(recorded(name, index) for index in range(1, turns + 1)))


def recorded_error(name: str, index: int | None = None, headers: dict[str, str] | None = None) -> Behaviour:
    """A recorded error answer with the recorded status (no request validation: errors come first)."""
    interaction = recordings.interactions(PROVIDER, name)[(index or 1) - 1]
    status = interaction["response"]["status"]
    return reply_bytes(recordings.response(PROVIDER, name, index), status=status, headers=headers)


def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Behaviour:
    """An error in Anthropic's documented envelope (§2.5) for statuses with no recording."""
    return reply_bytes(error_body(kind, message), status=status, headers=headers)


def events_as_sse(name: str) -> bytes:
    """A ``*.chunks.jsonl`` recording (data payloads only) re-framed as Anthropic SSE with event lines."""
    lines = [line for line in recordings.raw(PROVIDER, f"{name}.chunks.jsonl").splitlines() if line.strip()]
    return b"".join(b"event: " + json.loads(line)["type"].encode() + b"\ndata: " + line + b"\n\n" for line in lines)


def models_pages(*pages: list[dict]) -> Behaviour:
    """``GET /v1/models`` paginated with ``after_id`` like Anthropic's list endpoint (§2.6)."""

    async def behaviour(request: web.Request) -> web.Response:
        lowered = {name.lower(): value for name, value in request.headers.items()}
        if not lowered.get("x-api-key") or lowered.get("anthropic-version") != VERSION:
            return web.Response(
                body=error_body("authentication_error", "x-api-key and anthropic-version are required"),
                status=401,
                content_type="application/json",
            )
        after = request.query.get("after_id")
        number = 0
        if after:
            ids = [[item["id"] for item in page] for page in pages]
            number = next((i + 1 for i, page in enumerate(ids) if page and page[-1] == after), None)
            if number is None or number >= len(pages):
                return web.Response(
                    body=error_body("invalid_request_error", f"after_id: unknown id {after}"),
                    status=400,
                    content_type="application/json",
                )
        page = pages[number]
        data = {
            "data": page,
            "has_more": number < len(pages) - 1,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
        return web.json_response(data)

    return behaviour


def forced_tool(answer: dict, *, model: str = "claude-sonnet-4-20250514", fragment: int = 7) -> Behaviour:
    """Answer as Anthropic does when ``tool_choice`` forces a tool (``tool``, or ``any`` with one
    tool): a single ``tool_use`` block for the forced (or first) tool whose input is ``answer``, no
    text, ``stop_reason: tool_use``. With ``stream`` the input arrives as ``input_json_delta``
    fragments of ``fragment`` characters, framed like ``messages_stream_parallel_tool_use``."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        choice = body.get("tool_choice") or {}
        if choice.get("type") not in ("tool", "any"):
            return web.Response(
                body=error_body("invalid_request_error", "fake forced_tool needs a forced tool_choice"),
                status=400,
                content_type="application/json",
            )
        name = choice.get("name") or body["tools"][0]["name"]
        block_id = "toolu_01FakeForcedTool000000"
        usage = {"input_tokens": 402, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if not body.get("stream"):
            message = {
                "model": model,
                "id": "msg_01FakeForcedTool0000000",
                "type": "message",
                "role": "assistant",
                "content": [{"type": "tool_use", "id": block_id, "name": name, "input": answer}],
                "stop_reason": "tool_use",
                "stop_sequence": None,
                "usage": {**usage, "output_tokens": 57},
            }
            return web.json_response(message)
        text = json.dumps(answer)
        parts = [text[i : i + fragment] for i in range(0, len(text), fragment)]
        events = [
            {
                "type": "message_start",
                "message": {
                    "model": model,
                    "id": "msg_01FakeForcedTool0000000",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**usage, "output_tokens": 1},
                },
            },
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": block_id, "name": name, "input": {}},
            },
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
            *(
                {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": p}}
                for p in parts
            ),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 57},
            },
            {"type": "message_stop"},
        ]
        frames = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
        return await reply_stream(frames)(request)

    return validated(behaviour)
