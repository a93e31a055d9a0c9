"""Ollama's NDJSON chat stream -> OpenAI ``chat.completion.chunk`` SSE frames."""

from __future__ import annotations

import logging
import secrets

from backends.providers import shapes
from backends.providers.base import SSE_DONE, OpenAIError, ProviderError, clean_text, parse_json
from backends.providers.ollama import response

logger = logging.getLogger(__name__)


class OllamaStream:
    """Feed raw NDJSON bytes (split anywhere); get complete OpenAI SSE frames back."""

    def __init__(self, payload: dict) -> None:
        model = payload.get("model") if isinstance(payload, dict) else None
        self.chunks = shapes.ChunkWriter(model if isinstance(model, str) else "", f"chatcmpl-{secrets.token_hex(12)}")
        self.include_usage = shapes.wants_usage(payload)
        # OpenAI-shaped usage once Ollama reported it (on the done object), for the gateway's accounting.
        self.usage: dict | None = None
        self.buffer = b""
        self.started = False
        self.finished = False
        self.tool_calls = 0

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames: list[bytes] = []
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                return frames
            line, self.buffer = self.buffer[:end], self.buffer[end + 1 :]
            frames.extend(self._line(line))

    def close(self) -> list[bytes]:
        frames = self._line(self.buffer) if self.buffer.strip() else []
        self.buffer = b""
        if not self.finished:
            self.finished = True
            logger.warning("ollama: stream ended without a done object")
            frames.append(
                OpenAIError(502, "Ollama ended the stream early", type="api_error", code="upstream_stream_error").sse()
            )
        return [*frames, SSE_DONE]

    def _line(self, line: bytes) -> list[bytes]:
        line = line.strip()
        if not line or self.finished:
            return []
        try:
            data = parse_json(line)
        except ValueError:
            logger.warning("ollama: skipped a stream line that is not JSON")
            return []
        if not isinstance(data, dict):
            return []
        try:
            return self._object(data)
        except ProviderError as exc:  # an answer that cannot be re-encoded
            self.finished = True
            return [response.stream_error(str(exc)).sse()]

    def _object(self, data: dict) -> list[bytes]:
        if "error" in data:
            self.finished = True
            error = data["error"]
            message = error.get("message") if isinstance(error, dict) else error
            return [response.stream_error(clean_text(message) or "Ollama failed mid-stream").sse()]
        message = data.get("message")
        frames = self._message(message if isinstance(message, dict) else {})
        if data.get("done") is True:
            self.finished = True
            self.usage = response.usage(data)
            frames.extend(self._start())
            reason = response.finish_reason(data.get("done_reason"), has_tool_calls=self.tool_calls > 0)
            frames.append(self.chunks.delta({}, reason))
            if self.include_usage:
                frames.append(self.chunks.usage(self.usage))
        return frames

    def _message(self, message: dict) -> list[bytes]:
        delta: dict = {}
        if isinstance(message.get("thinking"), str) and message["thinking"]:
            delta["reasoning_content"] = message["thinking"]
        if isinstance(message.get("content"), str) and message["content"]:
            delta["content"] = message["content"]
        calls = []
        # Ollama sends each tool call whole, arguments included, in one object.
        tool_calls = message.get("tool_calls")
        for call in tool_calls if isinstance(tool_calls, list) else ():
            calls.append(response.tool_call(call, self.tool_calls))
            self.tool_calls += 1
        if calls:
            delta["tool_calls"] = calls
        if not delta:
            return self._start()
        return [*self._start(), self.chunks.delta(delta)]

    def _start(self) -> list[bytes]:
        if self.started:
            return []
        self.started = True
        return [self.chunks.delta({"role": "assistant", "content": ""})]
