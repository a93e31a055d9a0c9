"""Anthropic Messages answer -> OpenAI chat completion (``providers.md`` §2.3, §6.2)."""

from __future__ import annotations

import logging
import time

from backends.providers import shapes, validate
from backends.providers.anthropic.structured import answer_tool_name
from backends.providers.base import ProviderError, clean_text, parse_json
from backends.providers.shapes import count

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
    mapped = FINISH_REASONS.get(stop_reason) if isinstance(stop_reason, str) else None
    if mapped is None:
        logger.warning("anthropic: unknown stop_reason %r reported as 'stop'", clean_text(repr(stop_reason))[:100])
        return "stop"
    return mapped


def usage(anthropic_usage) -> dict:
    """Anthropic usage -> OpenAI usage; prompt tokens count cache writes and reads too.

    ``cache_read_input_tokens`` becomes ``prompt_tokens_details.cached_tokens``; a thinking-token
    breakdown (``output_tokens_details.thinking_tokens``), when Anthropic sends one, becomes
    ``completion_tokens_details.reasoning_tokens`` (``output_tokens`` already includes it).
    """
    data = anthropic_usage if isinstance(anthropic_usage, dict) else {}
    cache_read = count(data.get("cache_read_input_tokens"))
    prompt = count(data.get("input_tokens")) + count(data.get("cache_creation_input_tokens")) + cache_read
    details = data.get("output_tokens_details")
    reasoning = None
    if isinstance(details, dict):
        for key in ("thinking_tokens", "reasoning_tokens"):
            if details.get(key) is not None:
                reasoning = count(details[key])
                break
    return shapes.usage(prompt, count(data.get("output_tokens")), cache_read, reasoning)


def tool_call(block: dict) -> dict:
    tool_input = block.get("input")
    return {
        "id": _text(block.get("id")),
        "type": "function",
        "function": {
            "name": _text(block.get("name")),
            "arguments": shapes.dumps(tool_input if tool_input is not None else {}).decode(),
        },
    }


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def completion(payload: dict, body: bytes) -> bytes:
    try:
        data = parse_json(body)
    except (ValueError, TypeError):
        raise ProviderError("Anthropic answered with a body that is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("content"), list):
        raise ProviderError("Anthropic answered without a content array")
    texts: list[str] = []
    reasoning: list[str] = []
    thinking_blocks: list[dict] = []
    tool_calls: list[dict] = []
    skipped: set[str] = set()
    # The forced tool that carries response_format (``structured``): its input is the answer.
    response_tool = answer_tool_name(payload)
    answer_json: str | None = None
    for block in data["content"]:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(_text(block.get("text")))
        elif kind == "tool_use" and response_tool is not None and block.get("name") == response_tool:
            if answer_json is None:
                answer_json = tool_call(block)["function"]["arguments"]
        elif kind == "tool_use":
            tool_calls.append(tool_call(block))
        elif kind == "thinking":
            reasoning.append(_text(block.get("thinking")))
            thinking_blocks.append(
                {
                    "type": "thinking",
                    "thinking": _text(block.get("thinking")),
                    "signature": _text(block.get("signature")),
                }
            )
        elif kind == "redacted_thinking":
            thinking_blocks.append({"type": "redacted_thinking", "data": _text(block.get("data"))})
        else:
            skipped.add(clean_text(kind)[:50] if isinstance(kind, str) else validate.kind(kind))
    if skipped:
        logger.warning("anthropic: dropped response content blocks: %s", ", ".join(sorted(skipped)))
    stop = finish_reason(data.get("stop_reason"))
    if response_tool is not None:
        texts, stop = _structured_answer(texts, answer_json, tool_calls, stop)
    message: dict = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if thinking_blocks:
        message["reasoning_content"] = "".join(reasoning)
        # The round-trip carrier: send these back on the assistant message of the next turn.
        message["thinking_blocks"] = thinking_blocks
    model = data.get("model") if isinstance(data.get("model"), str) and data["model"] else payload.get("model")
    answer = {
        "id": _text(data.get("id")) or f"chatcmpl-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model if isinstance(model, str) else "",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": stop}],
        "usage": usage(data.get("usage")),
    }
    return shapes.dumps(answer, separators=(",", ":"))


def _structured_answer(texts: list[str], answer_json: str | None, tool_calls: list, stop: str) -> tuple[list[str], str]:
    """The content and finish reason of an answer to a request whose ``response_format`` went
    as a forced tool (``structured``): the tool's input is the content, the turn ends ``stop``."""
    if tool_calls:
        if texts:
            # The SDK's parse() reads any content as the schema's JSON, so prose beside a tool call goes.
            logger.warning("anthropic: dropped text beside a tool call in a response_format request")
        return [], stop
    if answer_json is not None:
        if texts:
            # Content must be the JSON alone for the client to parse it.
            logger.warning("anthropic: dropped text Claude wrote beside its response_format answer")
        return [answer_json], "stop" if stop == "tool_calls" else stop
    if stop in ("stop", "tool_calls"):
        # Prose where a schema was asked for must never reach the client as a success.
        raise ProviderError("Anthropic answered without the forced response_format tool call")
    return texts, stop
