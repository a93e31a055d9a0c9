"""Shared helpers for driving stream translators and reading SDK streams in provider tests."""

from __future__ import annotations

import random


def feed_in_slices(translator, body: bytes, *, seed: int, max_slice: int) -> list[bytes]:
    """Feed ``body`` in random slices, splitting lines and UTF-8 sequences as the network would."""
    rng = random.Random(seed)
    frames, position = [], 0
    while position < len(body):
        size = rng.randint(1, max_slice)
        frames += translator.feed(body[position : position + size])
        position += size
    return frames + translator.close()


def collect(chunks) -> dict:
    """Assemble an OpenAI SDK stream the way client code does."""
    result = {"content": "", "reasoning": "", "tool_calls": {}, "finish": None, "usage": None, "chunks": 0}
    for chunk in chunks:
        result["chunks"] += 1
        if chunk.usage is not None:
            result["usage"] = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            result["content"] += delta.content or ""
            result["reasoning"] += getattr(delta, "reasoning_content", None) or ""
            for call in delta.tool_calls or []:
                entry = result["tool_calls"].setdefault(call.index, {"id": None, "name": "", "arguments": ""})
                entry["id"] = call.id or entry["id"]
                if call.function is not None:
                    entry["name"] += call.function.name or ""
                    entry["arguments"] += call.function.arguments or ""
            result["finish"] = choice.finish_reason or result["finish"]
    return result
