"""Cohere v2 SSE stream -> OpenAI ``chat.completion.chunk`` frames."""

from __future__ import annotations

import logging
import uuid

from backends.providers import shapes
from backends.providers.base import SSE_DONE, OpenAIError, ProviderError, parse_json
from backends.providers.cohere import response

logger = logging.getLogger(__name__)

# Events that carry nothing an OpenAI client can use.
IGNORED = frozenset({"content-start", "content-end", "citation-start", "citation-end", "debug"})


class CohereStream:
    """Feed raw SSE bytes from ``/v2/chat``; get complete OpenAI SSE frames back."""

    def __init__(self, payload: dict) -> None:
        model = payload.get("model") if isinstance(payload, dict) else None
        self.chunks = shapes.ChunkWriter(model if isinstance(model, str) else "", f"chatcmpl-{uuid.uuid4().hex}")
        self.include_usage = shapes.wants_usage(payload)
        # OpenAI-shaped usage once Cohere reported it (at message-end), for the gateway's accounting.
        self.usage: dict | None = None
        self.buffer = b""
        self.started = False
        self.finished = False
        # Cohere tool-call index -> whether argument text was seen for it.
        self.tool_arguments: dict[int, bool] = {}

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        if b"\r" in self.buffer:
            self.buffer = self.buffer.replace(b"\r\n", b"\n")
        *events, self.buffer = self.buffer.split(b"\n\n")
        frames: list[bytes] = []
        for event in events:
            frames.extend(self._event(event))
        return frames

    def close(self) -> list[bytes]:
        frames = self._event(self.buffer) if self.buffer.strip() else []
        self.buffer = b""
        if not self.finished:
            self.finished = True
            logger.warning("cohere: stream ended without message-end")
            frames.append(
                OpenAIError(502, "Cohere ended the stream early", type="api_error", code="upstream_stream_error").sse()
            )
        return [*frames, SSE_DONE]

    # --- events ---------------------------------------------------------------------------
    def _event(self, raw: bytes) -> list[bytes]:
        try:
            return self._parse(raw)
        except ProviderError as exc:  # an answer that cannot be re-encoded
            return self._fail(str(exc))

    def _parse(self, raw: bytes) -> list[bytes]:
        name = ""
        lines = []
        for line in raw.decode("utf-8", "replace").split("\n"):
            if line.startswith("data:"):
                lines.append(line[5:].strip())
            elif line.startswith("event:"):
                name = line[6:].strip()
        text = "\n".join(lines).strip()
        if not text or text == "[DONE]" or self.finished:
            return []
        try:
            data = parse_json(text)
        except ValueError:
            logger.warning("cohere: skipped a stream event that is not JSON")
            return []
        if not isinstance(data, dict):
            return []
        kind = data.get("type") or name
        if not isinstance(kind, str):
            return []
        if kind == "error" or (not data.get("type") and "message" in data and "delta" not in data):
            message = data.get("message")
            return self._fail(
                message if isinstance(message, str) and message else "Cohere reported an error mid-stream"
            )
        if kind in IGNORED:
            return []
        handler = getattr(self, "_on_" + kind.replace("-", "_"), None)
        if handler is None:
            logger.debug("cohere: ignored stream event %r", kind)
            return []
        return handler(data)

    def _on_message_start(self, data: dict) -> list[bytes]:
        if isinstance(data.get("id"), str) and data["id"]:
            self.chunks.id = f"chatcmpl-{data['id']}"
        return self._start()

    def _on_content_delta(self, data: dict) -> list[bytes]:
        content = _dict(_message(data).get("content"))
        delta = {}
        if _text(content.get("thinking")):
            delta["reasoning_content"] = content["thinking"]
        if _text(content.get("text")):
            delta["content"] = content["text"]
        return self._delta(delta)

    def _on_tool_plan_delta(self, data: dict) -> list[bytes]:
        plan = _text(_message(data).get("tool_plan"))
        return self._delta({"reasoning_content": plan}) if plan else []

    def _on_tool_call_start(self, data: dict) -> list[bytes]:
        index = _index(data)
        call = _dict(_message(data).get("tool_calls"))
        function = _dict(call.get("function"))
        arguments = _text(function.get("arguments"))
        self.tool_arguments[index] = bool(arguments)
        entry = {
            "index": index,
            "id": _text(call.get("id")) or f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": _text(function.get("name")), "arguments": arguments},
        }
        return self._delta({"tool_calls": [entry]})

    def _on_tool_call_delta(self, data: dict) -> list[bytes]:
        index = _index(data)
        function = _dict(_dict(_message(data).get("tool_calls")).get("function"))
        arguments = _text(function.get("arguments"))
        if not arguments:
            return []
        self.tool_arguments[index] = True
        return self._delta({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

    def _on_tool_call_end(self, data: dict) -> list[bytes]:
        index = _index(data)
        if self.tool_arguments.get(index):
            return []
        # A parameterless tool never gets a delta; clients json.loads the arguments, so give "{}".
        self.tool_arguments[index] = True
        return self._delta({"tool_calls": [{"index": index, "function": {"arguments": "{}"}}]})

    def _on_message_end(self, data: dict) -> list[bytes]:
        delta = _dict(data.get("delta"))
        if isinstance(delta.get("usage"), dict):
            self.usage = response.usage(delta["usage"])
        try:
            reason = response.finish_reason(delta.get("finish_reason"), has_tool_calls=bool(self.tool_arguments))
        except response.CohereGenerationError as exc:
            return self._fail(str(exc))
        frames = self._start()
        frames.append(self.chunks.delta({}, reason))
        if self.include_usage:
            frames.append(self.chunks.usage(self.usage or response.usage(None)))
        self.finished = True
        return frames

    # --- helpers --------------------------------------------------------------------------
    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        return [self.chunks.delta({"role": "assistant", "content": ""})]

    def _delta(self, delta: dict) -> list[bytes]:
        if not delta:
            return []
        return [*self._start(), self.chunks.delta(delta)]

    def _fail(self, message: str) -> list[bytes]:
        self.finished = True
        return [OpenAIError(502, message, type="api_error", code="upstream_error").sse()]


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _message(data: dict) -> dict:
    return _dict(_dict(data.get("delta")).get("message"))


def _index(data: dict) -> int:
    """Cohere's tool-call index: a small non-negative integer, else 0."""
    index = data.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < 2**31 else 0
