"""A fake Ollama native API that replays recorded answers and rejects requests Ollama would reject.

Checks follow the recorded native requests (tests/fixtures/recorded/ollama) and ``api/types.go``
as summarised in providers.md §4: string message content, base64 ``images`` without a data-URL
prefix, tool-call ``arguments`` as JSON objects, sampling inside ``options``, an explicit
``stream`` flag. A violation answers 400 ``{"error": ...}`` so a translation bug fails loudly.

No native tool-call or thinking transcript was recorded (providers.md §7), so those answers are
rebuilt from Ollama's own ``/v1`` recordings by inverting its OpenAI layer (``to_native``).
"""

from __future__ import annotations

import base64
import binascii
import json

from aiohttp import web

from tests.fakes import recordings
from tests.fakes.server import FakeProvider, reply_stream

CHAT_FIELDS = frozenset(
    {"model", "messages", "tools", "format", "options", "stream", "think", "keep_alive", "truncate", "shift"}
)
OPTION_FIELDS = frozenset(
    {
        "num_predict",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "stop",
        "seed",
        "num_ctx",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    }
)
EMBED_FIELDS = frozenset({"model", "input", "truncate", "dimensions", "keep_alive", "options"})
MESSAGE_FIELDS = frozenset({"role", "content", "images", "thinking", "tool_calls", "tool_name", "tool_call_id"})

# GET /api/tags is not recorded; entries follow ListModelResponse in api/types.go, with the
# model names of the recordings.
TAGS = {
    "models": [
        {
            "name": "gemma3:1b",
            "model": "gemma3:1b",
            "modified_at": "2025-08-20T13:47:57.123456789Z",
            "size": 815319791,
            "digest": "8648f39daa8fbf5b18c7b4e6a8fb4990c692751d49917417b8842ca5758e7ffc",
            "details": {"format": "gguf", "family": "gemma3", "families": ["gemma3"], "parameter_size": "999.89M"},
        },
        {
            "name": "nomic-embed-text:latest",
            "model": "nomic-embed-text:latest",
            "modified_at": "2025-08-20T13:40:01.5Z",
            "size": 274302450,
            "digest": "0a109f422b47e3a30ba2b10eca18548e944e8a23073ee3f3e947efcf3c45e59f",
            "details": {"format": "gguf", "family": "nomic-bert", "families": ["nomic-bert"], "parameter_size": "137M"},
        },
        {
            "name": "qwen3:latest",
            "model": "qwen3:latest",
            "modified_at": "2025-08-19T09:00:00Z",
            "size": 5225388164,
            "digest": "500a1f067a9f782620b40bee6f7b0c89e17ae61f686b92c24933e4ca4b2b8b41",
            "details": {"format": "gguf", "family": "qwen3", "families": ["qwen3"], "parameter_size": "8.2B"},
        },
    ]
}


class Violation(Exception):
    pass


def check_auth(request: web.Request, key_required: bool) -> None:
    header = request.headers.get("Authorization")
    if header is None and not key_required:
        return
    scheme, _, token = (header or "").partition(" ")
    if scheme != "Bearer" or not token.strip():
        raise Violation("unauthorized")


def check_chat(body: dict) -> None:
    unknown = set(body) - CHAT_FIELDS
    if unknown:
        raise Violation(f"fake ollama: unknown fields {sorted(unknown)} would be silently ignored")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise Violation("model is required")
    if not isinstance(body.get("stream"), bool):
        raise Violation("fake ollama: stream must be sent explicitly (Ollama streams by default)")
    options = body.get("options") or {}
    if set(options) - OPTION_FIELDS:
        raise Violation(f"fake ollama: unknown options {sorted(set(options) - OPTION_FIELDS)}")
    if "stop" in options and not (
        isinstance(options["stop"], list) and all(isinstance(s, str) for s in options["stop"])
    ):
        raise Violation("options.stop must be an array of strings")
    if "format" in body and not (body["format"] in ("", "json") or isinstance(body["format"], dict)):
        raise Violation('format must be "json" or a JSON schema')
    for tool in body.get("tools") or []:
        if tool.get("type") != "function" or not isinstance((tool.get("function") or {}).get("name"), str):
            raise Violation("tools must be {type: function, function: {name, ...}}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Violation("messages must be a non-empty array")
    for message in messages:
        _check_message(message)


def _check_message(message) -> None:
    if not isinstance(message, dict) or set(message) - MESSAGE_FIELDS:
        raise Violation(f"invalid message {message}")
    if message.get("role") not in ("system", "user", "assistant", "tool"):
        raise Violation(f"invalid role {message.get('role')!r}")
    if not isinstance(message.get("content", ""), str):
        raise Violation("json: cannot unmarshal array into Go struct field Message.messages.content of type string")
    for image in message.get("images") or []:
        if not isinstance(image, str) or image.startswith("data:"):
            raise Violation("images must be base64 strings without a data: prefix")
        try:
            base64.b64decode(image, validate=True)
        except binascii.Error:
            raise Violation("illegal base64 data in images") from None
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        if not isinstance(function.get("name"), str):
            raise Violation("tool call needs function.name")
        if not isinstance(function.get("arguments"), dict):
            raise Violation(
                "json: cannot unmarshal string into Go struct field ToolCallFunction.arguments of type "
                "api.ToolCallFunctionArguments"
            )
    if message["role"] == "tool" and not message.get("tool_name"):
        raise Violation("fake ollama: tool results need tool_name so the model knows which tool answered")


def check_embed(body: dict) -> None:
    if set(body) - EMBED_FIELDS:
        raise Violation(f"fake ollama: unknown fields {sorted(set(body) - EMBED_FIELDS)}")
    value = body.get("input")
    if not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
        raise Violation("invalid input type")


def _validated(request: web.Request, raw: bytes, check, key_required: bool) -> dict:
    check_auth(request, key_required)
    try:
        body = json.loads(raw)
    except ValueError:
        raise Violation("invalid JSON body") from None
    if not isinstance(body, dict):
        raise Violation("body must be an object")
    check(body)
    return body


def _reject(violation: Violation) -> web.Response:
    status = 401 if str(violation) == "unauthorized" else 400
    return web.json_response({"error": str(violation)}, status=status)


def chat(*answers: bytes | tuple[int, bytes], key_required: bool = False, fake: FakeProvider | None = None):
    """Answer successive /api/chat calls from NDJSON transcripts.

    ``stream: true`` replays the lines one write at a time; ``stream: false`` answers with the
    single object Ollama builds from the same transcript. ``(status, body)`` answers an error.
    """
    queue = list(answers)

    async def behaviour(request: web.Request) -> web.StreamResponse:
        try:
            body = _validated(request, await request.read(), check_chat, key_required)
        except Violation as violation:
            return _reject(violation)
        if not queue:
            return web.json_response({"error": "fake ollama: no more recorded answers"}, status=500)
        item = queue.pop(0)
        if isinstance(item, tuple):
            status, raw = item
            return web.Response(body=raw, status=status, content_type="application/json")
        if body["stream"]:
            lines = [line + b"\n" for line in item.splitlines() if line.strip()]
            return await reply_stream(lines, content_type="application/x-ndjson", fake=fake)(request)
        return web.json_response(aggregate(item))

    return behaviour


def embed(raw: bytes, *, key_required: bool = False):
    async def behaviour(request: web.Request) -> web.Response:
        try:
            _validated(request, await request.read(), check_embed, key_required)
        except Violation as violation:
            return _reject(violation)
        return web.Response(body=raw, content_type="application/json")

    return behaviour


def tags():
    async def behaviour(request: web.Request) -> web.Response:
        return web.json_response(TAGS)

    return behaviour


def aggregate(ndjson: bytes) -> dict:
    """The single ``stream: false`` answer Ollama builds from a streamed transcript."""
    lines = [json.loads(line) for line in ndjson.splitlines() if line.strip()]
    final = dict(lines[-1])
    message = {"role": "assistant", "content": "".join(line["message"].get("content", "") for line in lines)}
    thinking = "".join(line["message"].get("thinking", "") for line in lines)
    if thinking:
        message["thinking"] = thinking
    calls = [call for line in lines for call in line["message"].get("tool_calls", [])]
    if calls:
        message["tool_calls"] = calls
    final["message"] = message
    return final


def ndjson(*objects: dict) -> bytes:
    return b"".join(json.dumps(obj).encode() + b"\n" for obj in objects)


def to_native(openai_sse: bytes, *, model: str, created_at: str = "2025-08-20T13:48:24.316155Z") -> bytes:
    """Invert Ollama's ``/v1`` stream layer: its recorded SSE -> the native NDJSON it came from.

    ``delta.reasoning`` was ``message.thinking``, whole tool calls were native calls with object
    arguments, the finish chunk was ``done: true`` with ``done_reason: "stop"`` (Ollama says stop
    even after tool calls), and the usage chunk carried the eval counts.
    """
    lines, counts = [], {}
    for frame in recordings.sse_frames(openai_sse):
        payload = frame.decode().removeprefix("data: ").strip()
        if payload == "[DONE]":
            continue
        chunk = json.loads(payload)
        if chunk.get("usage"):
            counts = {
                "prompt_eval_count": chunk["usage"]["prompt_tokens"],
                "eval_count": chunk["usage"]["completion_tokens"],
            }
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            message: dict = {"role": "assistant", "content": delta.get("content") or ""}
            if delta.get("reasoning"):
                message["thinking"] = delta["reasoning"]
            if delta.get("tool_calls"):
                message["tool_calls"] = [
                    {
                        "id": call["id"],
                        "function": {
                            "index": call.get("index", 0),
                            "name": call["function"]["name"],
                            "arguments": json.loads(call["function"]["arguments"]),
                        },
                    }
                    for call in delta["tool_calls"]
                ]
            if choice.get("finish_reason"):
                lines.append({"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"})
            elif message["content"] or message.get("thinking") or message.get("tool_calls"):
                lines.append({"message": message, "done": False})
    for line in lines:
        line.update({"model": model, "created_at": created_at})
    lines[-1].update(counts)
    return ndjson(*lines)
