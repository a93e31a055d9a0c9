"""OpenAI ``chat.completion.chunk`` stream -> Anthropic Messages SSE events.

It reads what ``gateway.streaming`` relays: OpenAI SSE bytes, cut anywhere (a passthrough
upstream's raw bytes, or the frames a translating adapter such as Cohere's or Ollama's wrote),
so it can sit after the adapter's own translator. ``feed_chunk`` takes an already parsed chunk.
Like the adapters' translators, ``feed`` and ``close`` never raise: whatever arrives ends, at
worst, in an Anthropic ``error`` event.

Anthropic's order is kept: ``message_start``; per block ``content_block_start``, its deltas,
``content_block_stop``; then ``message_delta`` (stop reason, usage) and ``message_stop``. OpenAI
sends usage in a chunk after the one with ``finish_reason``, so ``message_delta`` waits for
``[DONE]`` (or the end of the stream).
"""

from __future__ import annotations

import json

from backends.providers.base import OpenAIError
from gateway.dialects.anthropic_answer import (
    anthropic_error_event,
    anthropic_usage,
    message_id,
    stop_reason,
)
from gateway.dialects.chat_stream import ChatChunkReader, text_of

# The first form of a text or thinking block, as Anthropic starts them.
EMPTY_BLOCKS = {"text": {"type": "text", "text": ""}, "thinking": {"type": "thinking", "thinking": "", "signature": ""}}


def event(name: str, data: dict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class OpenAIToAnthropicStream(ChatChunkReader):
    """One per stream. ``usage`` is the OpenAI-shaped usage once reported, for the gateway's accounting."""

    answer_noun = "message"

    def __init__(self, requested_model: str) -> None:
        super().__init__()
        self.model = requested_model
        self._started = False
        self._next_index = 0
        # The open block: ("text" | "thinking" | "tool", OpenAI tool index or None), Anthropic index.
        self._open: tuple[str, int | None] | None = None
        self._open_index = -1
        # OpenAI tool_calls index -> Anthropic content block index.
        self._tools: dict[int, int] = {}
        self._saw_tool = False

    def feed_chunk(self, chunk) -> list[bytes]:
        out: list[bytes] = []
        if not self._ended:
            self._chunk(chunk, out)
        return out

    # --- chunks -------------------------------------------------------------------------------
    def _reasoning_delta(self, text: str, out: list[bytes]) -> None:
        self._text_delta("thinking", text, out)

    def _content_delta(self, text: str, out: list[bytes]) -> None:
        self._text_delta("text", text, out)

    def _other_delta(self, delta: dict, out: list[bytes]) -> None:
        blocks = delta.get("thinking_blocks")
        for block in blocks if isinstance(blocks, list) else ():
            if isinstance(block, dict):
                self._thinking_block(block, out)

    def _finished(self, out: list[bytes]) -> None:
        self._close_block(out)

    def _start(self, chunk: dict, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        message = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(event("message_start", {"type": "message_start", "message": message}))

    def _open_block(self, key: tuple[str, int | None], block: dict, out: list[bytes]) -> int:
        self._close_block(out)
        index = self._next_index
        self._next_index += 1
        self._open, self._open_index = key, index
        start = {"type": "content_block_start", "index": index, "content_block": block}
        out.append(event("content_block_start", start))
        return index

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is None:
            return
        out.append(event("content_block_stop", {"type": "content_block_stop", "index": self._open_index}))
        self._open = None

    def _text_delta(self, kind: str, text: str, out: list[bytes]) -> None:
        if self._open != (kind, None):
            self._open_block((kind, None), dict(EMPTY_BLOCKS[kind]), out)
        delta = {"type": "text_delta", "text": text} if kind == "text" else {"type": "thinking_delta", "thinking": text}
        payload = {"type": "content_block_delta", "index": self._open_index, "delta": delta}
        out.append(event("content_block_delta", payload))

    def _thinking_block(self, block: dict, out: list[bytes]) -> None:
        """A signed or redacted thinking block (from an Anthropic adapter's stream): keep it replayable."""
        if block.get("type") == "thinking" and text_of(block.get("signature")):
            if self._open != ("thinking", None):
                self._open_block(("thinking", None), dict(EMPTY_BLOCKS["thinking"]), out)
            delta = {"type": "signature_delta", "signature": block["signature"]}
            out.append(
                event("content_block_delta", {"type": "content_block_delta", "index": self._open_index, "delta": delta})
            )
            self._close_block(out)
        elif block.get("type") == "redacted_thinking" and text_of(block.get("data")):
            self._open_block(("redacted_thinking", None), {"type": "redacted_thinking", "data": block["data"]}, out)
            self._close_block(out)

    def _tool_delta(self, call: dict, position: int, out: list[bytes]) -> None:
        tool = call.get("index")
        if isinstance(tool, bool) or not isinstance(tool, int):
            tool = position
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        if tool not in self._tools:
            block = {
                "type": "tool_use",
                "id": text_of(call.get("id")) or f"toolu_{self._next_index}",
                "name": text_of(function.get("name")),
                "input": {},
            }
            self._tools[tool] = self._open_block(("tool", tool), block, out)
            self._saw_tool = True
        arguments = text_of(function.get("arguments"))
        if arguments:
            # Arguments for a tool whose block already closed (interleaved upstream deltas) still
            # name its index: Anthropic's SDKs accumulate by index.
            delta = {"type": "input_json_delta", "partial_json": arguments}
            payload = {"type": "content_block_delta", "index": self._tools[tool], "delta": delta}
            out.append(event("content_block_delta", payload))

    # --- ends ---------------------------------------------------------------------------------
    def _complete(self, out: list[bytes]) -> None:
        self._start({}, out)
        self._close_block(out)
        reason = stop_reason(self._finish)
        if reason == "end_turn" and self._saw_tool:
            reason = "tool_use"
        usage = anthropic_usage(self.usage)
        delta = {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None}, "usage": usage}
        out.append(event("message_delta", delta))
        out.append(event("message_stop", {"type": "message_stop"}))
        self._ended = True

    def _fail(self, error: OpenAIError, out: list[bytes]) -> None:
        out.append(anthropic_error_event(error))
        self._ended = True
