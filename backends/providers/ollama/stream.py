"""Ollama's NDJSON chat stream -> OpenAI ``chat.completion.chunk`` SSE frames."""

from __future__ import annotations

import json
import logging
import secrets

from backends.providers import shapes
from backends.providers.base import SSE_DONE, OpenAIError
from backends.providers.ollama import response

logger = logging.getLogger(__name__)


class OllamaStream:
    """Feed raw NDJSON bytes (split anywhere); get complete OpenAI SSE frames back."""

    def __init__(self, payload: dict) -> None:
        self.chunks = shapes.ChunkWriter(payload.get("model", ""), f"chatcmpl-{secrets.token_hex(12)}")
        self.include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
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
            data = json.loads(line)
        except ValueError:
            logger.warning("ollama: skipped a stream line that is not JSON")
            return []
        if not isinstance(data, dict):
            return []
        if "error" in data:
            self.finished = True
            error = data["error"]
            message = error.get("message") if isinstance(error, dict) else error
            return [response.stream_error(str(message or "Ollama failed mid-stream")).sse()]
        frames = self._message(data.get("message") or {})
        if data.get("done"):
            self.finished = True
            frames.extend(self._start())
            reason = response.finish_reason(data.get("done_reason"), has_tool_calls=self.tool_calls > 0)
            frames.append(self.chunks.delta({}, reason))
            if self.include_usage:
                frames.append(self.chunks.usage(response.usage(data)))
        return frames

    def _message(self, message: dict) -> list[bytes]:
        delta: dict = {}
        if message.get("thinking"):
            delta["reasoning_content"] = message["thinking"]
        if message.get("content"):
            delta["content"] = message["content"]
        calls = []
        # Ollama sends each tool call whole, arguments included, in one object.
        for call in message.get("tool_calls") or []:
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
