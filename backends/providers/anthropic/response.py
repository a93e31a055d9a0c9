"""Anthropic Messages answer -> OpenAI chat completion (``providers.md`` §2.3, §6.2)."""

from __future__ import annotations

import json
import logging
import time

from backends.providers.base import ProviderError

logger = logging.getLogger(__name__)

# ``providers.md`` §6.2, "Recommended" column.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason) -> str:
    if stop_reason is None:
        return "stop"
    mapped = FINISH_REASONS.get(stop_reason)
    if mapped is None:
        logger.warning("anthropic: unknown stop_reason %r reported as 'stop'", stop_reason)
        return "stop"
    return mapped


def usage(anthropic_usage: dict) -> dict:
    """Anthropic usage -> OpenAI usage; prompt tokens count cache writes and reads too."""
    cache_read = _count(anthropic_usage, "cache_read_input_tokens")
    prompt = (
        _count(anthropic_usage, "input_tokens") + _count(anthropic_usage, "cache_creation_input_tokens") + cache_read
    )
    completion = _count(anthropic_usage, "output_tokens")
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read},
    }


def _count(data: dict, key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) else 0


def tool_call(block: dict) -> dict:
    return {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": json.dumps(block.get("input") or {}, ensure_ascii=False)},
    }


def completion(payload: dict, body: bytes) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        raise ProviderError("Anthropic answered with a body that is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise ProviderError("Anthropic answered without a content array")
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict] = []
    tool_calls: list[dict] = []
    skipped: set[str] = set()
    for block in data["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            tool_calls.append(tool_call(block))
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
            thinking_blocks.append(
                {"type": "thinking", "thinking": block.get("thinking") or "", "signature": block.get("signature")}
            )
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": block.get("data")})
        else:
            skipped.add(str(kind))
    if skipped:
        logger.warning("anthropic: dropped response content blocks: %s", ", ".join(sorted(skipped)))
    message: dict = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking_blocks:
        message["reasoning_content"] = "".join(reasoning)
        # The round-trip carrier: send these back on the assistant message of the next turn.
        message["thinking_blocks"] = thinking_blocks
    answer = {
        "id": data.get("id") or f"chatcmpl-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("model") or payload.get("model"),
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(data.get("stop_reason"))}
        ],
        "usage": usage(data.get("usage") or {}),
    }
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()
