"""A fake Cohere v2 API that replays recorded answers and rejects requests Cohere would reject.

The request checks follow the recorded requests (tests/fixtures/recorded/cohere) and the
cohere-python v2 types cited in providers.md §3: auth header, allowed top-level fields, message
and content-part structure, tool-call ids and string arguments. A violation answers 400 in
Cohere's error shape, so a translation bug fails the test loudly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web

from tests.fakes import recordings
from tests.fakes.server import FakeProvider, reply_stream

CHAT_FIELDS = frozenset(
    {
        "model",
        "messages",
        "tools",
        "strict_tools",
        "documents",
        "citation_options",
        "response_format",
        "safety_mode",
        "max_tokens",
        "stop_sequences",
        "temperature",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "k",
        "p",
        "logprobs",
        "tool_choice",
        "thinking",
        "priority",
        "stream",
    }
)
EMBED_FIELDS = frozenset(
    {
        "model",
        "input_type",
        "texts",
        "images",
        "inputs",
        "embedding_types",
        "output_dimension",
        "max_tokens",
        "truncate",
    }
)
INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering", "image"})
EMBEDDING_TYPES = frozenset({"float", "int8", "uint8", "binary", "ubinary", "base64"})

# GET /v1/models is not recorded; entries follow cohere-python types/get_model_response.py with
# model names seen in the recordings, split over two pages to exercise next_page_token.
MODEL_PAGES = {
    None: {
        "models": [
            {"name": "command-a-03-2025", "endpoints": ["generate", "chat", "summarize"], "is_deprecated": False},
            {"name": "rerank-v3.5", "endpoints": ["rerank"], "is_deprecated": False},
            {"name": "embed-v4.0", "endpoints": ["embed", "classify"], "is_deprecated": False},
        ],
        "next_page_token": "page-2",
    },
    "page-2": {
        "models": [
            {"name": "command-r7b-12-2024", "endpoints": ["chat"], "is_deprecated": False},
            {"name": "command-r", "endpoints": ["chat"], "is_deprecated": True},
        ],
    },
}


class Violation(Exception):
    pass


def check_auth(request: web.Request) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Violation("missing 'Authorization: Bearer <key>'")


def _json_body(raw: bytes, request: web.Request) -> dict:
    if not request.headers.get("Content-Type", "").startswith("application/json"):
        raise Violation("Content-Type must be application/json")
    try:
        body = json.loads(raw)
    except ValueError:
        raise Violation("body is not JSON") from None
    if not isinstance(body, dict):
        raise Violation("body must be an object")
    return body


def check_chat(body: dict) -> None:
    unknown = set(body) - CHAT_FIELDS
    if unknown:
        raise Violation(f"unknown fields: {sorted(unknown)}")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise Violation("model is required")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise Violation("stream must be a boolean")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise Violation("messages must be a non-empty array")
    tool_names = set()
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise Violation("tools must be {type: function, function: {...}}")
        if set(function) - {"name", "description", "parameters"} or not isinstance(function.get("name"), str):
            raise Violation(f"invalid tool function {function}")
        tool_names.add(function["name"])
    if body.get("tool_choice") not in (None, "REQUIRED", "NONE"):
        raise Violation("tool_choice must be REQUIRED or NONE")
    if "stop_sequences" in body and not all(isinstance(s, str) for s in body["stop_sequences"]):
        raise Violation("stop_sequences must be strings")
    response_format = body.get("response_format")
    if response_format is not None and (
        response_format.get("type") not in ("text", "json_object") or set(response_format) - {"type", "json_schema"}
    ):
        raise Violation(f"invalid response_format {response_format}")
    _check_messages(messages, tool_names)


def _check_messages(messages: list, tool_names: set[str]) -> None:
    call_ids: set[str] = set()
    for position, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            if position != 0:
                raise Violation("system turn must be the first in the list")
            _check_content(message.get("content"), allow_images=False)
        elif role == "user":
            _check_content(message.get("content"), allow_images=True)
        elif role == "assistant":
            if set(message) - {"role", "content", "tool_calls", "tool_plan", "citations"}:
                raise Violation(f"unknown assistant message fields {sorted(message)}")
            if "content" in message:
                _check_content(message["content"], allow_images=False)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                if not call.get("id") or call.get("type") != "function":
                    raise Violation("tool_calls need an id and type function")
                if tool_names and function.get("name") not in tool_names:
                    raise Violation(f"tool call names unknown tool {function.get('name')!r}")
                arguments = function.get("arguments")
                if not isinstance(arguments, str):
                    raise Violation("tool call arguments must be a JSON string")
                try:
                    json.loads(arguments)
                except ValueError:
                    raise Violation(f"tool call arguments are not valid JSON: {arguments!r}") from None
                call_ids.add(call["id"])
        elif role == "tool":
            if set(message) - {"role", "tool_call_id", "content"}:
                raise Violation(f"unknown tool message fields {sorted(message)}")
            if message.get("tool_call_id") not in call_ids:
                raise Violation(f"tool_call_id {message.get('tool_call_id')!r} answers no earlier tool call")
            _check_content(message.get("content"), allow_images=False, allow_documents=True)
        else:
            raise Violation(f"invalid role {role!r}")


def _check_content(content, *, allow_images: bool, allow_documents: bool = False) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise Violation("content must be a string or an array of parts")
    kinds = {"text"} | ({"image_url"} if allow_images else set()) | ({"document"} if allow_documents else set())
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise Violation(f"invalid content part type {kind!r}")
        if kind == "text" and not isinstance(part.get("text"), str):
            raise Violation("text parts need a string 'text'")
        if kind == "image_url" and not isinstance((part.get("image_url") or {}).get("url"), str):
            raise Violation("image_url parts need image_url.url")


def check_embed(body: dict) -> None:
    unknown = set(body) - EMBED_FIELDS
    if unknown:
        raise Violation(f"unknown fields: {sorted(unknown)}")
    if body.get("input_type") not in INPUT_TYPES:
        raise Violation("input_type is required for embed models v3 and higher")
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise Violation("texts must be a non-empty array of strings")
    if not set(body.get("embedding_types") or ["float"]) <= EMBEDDING_TYPES:
        raise Violation("invalid embedding_types")


def cohere_error(message: str, status: int = 400) -> web.Response:
    return web.json_response({"id": "fake-violation", "message": f"fake cohere: {message}"}, status=status)


def validating(check: Callable[[dict], None], answer: Callable[[web.Request, dict], object]):
    """A behaviour that checks the request first and answers 400 on any violation."""

    async def behaviour(request: web.Request) -> web.StreamResponse:
        try:
            check_auth(request)
            body = _json_body(await request.read(), request)
            check(body)
        except Violation as violation:
            return cohere_error(str(violation), 401 if "Authorization" in str(violation) else 400)
        result = answer(request, body)
        return await result if asyncio.iscoroutine(result) else result

    return behaviour


def chat(*answers: bytes | tuple[int, bytes], fake: FakeProvider | None = None, drop_after: int | None = None):
    """Answer successive /v2/chat calls with recorded bodies: JSON for stream false, SSE for true.

    A ``(status, body)`` answer replies with that error status. The request's ``stream`` flag must
    match the recording's kind, as the real API would answer in the asked-for form.
    """
    queue = list(answers)

    def answer(request: web.Request, body: dict):
        if not queue:
            return cohere_error("no more recorded answers", 500)
        item = queue.pop(0)
        if isinstance(item, tuple):
            status, raw = item
            return web.Response(body=raw, status=status, content_type="application/json")
        is_sse = item.lstrip().startswith(b"event:") or item.lstrip().startswith(b"data:")
        if is_sse != body.get("stream", False):
            return cohere_error(f"recorded answer is {'SSE' if is_sse else 'JSON'} but stream={body.get('stream')}")
        if is_sse:
            return reply_stream(recordings.sse_frames(item), drop_after=drop_after, fake=fake)(request)
        return web.Response(body=item, content_type="application/json")

    return validating(check_chat, answer)


def embed(raw: bytes):
    return validating(check_embed, lambda request, body: web.Response(body=raw, content_type="application/json"))


def models():
    async def behaviour(request: web.Request) -> web.Response:
        try:
            check_auth(request)
        except Violation as violation:
            return cohere_error(str(violation), 401)
        return web.json_response(MODEL_PAGES[request.query.get("page_token")])

    return behaviour


def chunks_sse(name: str) -> bytes:
    """A ``*_chunks_only`` recording re-framed as Cohere's own SSE (event line, data line, [DONE])."""
    frames = []
    for line in recordings.raw("cohere", f"{name}.chunks.jsonl").splitlines():
        if line.strip():
            kind = json.loads(line)["type"]
            frames.append(b"event: " + kind.encode() + b"\ndata: " + line + b"\n\n")
    return b"".join(frames) + b"data: [DONE]\n\n"
