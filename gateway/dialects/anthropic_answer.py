"""OpenAI chat completion -> Anthropic ``message``; gateway errors -> Anthropic error envelopes.

The stop-reason and error-type tables are the Anthropic adapter's, inverted.
"""

from __future__ import annotations

import json
import time

from backends.providers.anthropic.errors import STATUS_FOR_TYPE
from backends.providers.anthropic.response import FINISH_REASONS
from backends.providers.base import OpenAIError, ProviderError, clean_text, parse_json
from backends.providers.shapes import count


def _first_wins(table: dict) -> dict:
    """Invert a many-to-one table; the first key listed for a value is its canonical inverse."""
    inverse: dict = {}
    for key, value in table.items():
        inverse.setdefault(value, key)
    return inverse


# OpenAI ``finish_reason`` -> Anthropic ``stop_reason`` (stop -> end_turn, length -> max_tokens,
# tool_calls -> tool_use, content_filter -> refusal); the legacy ``function_call`` is a tool use.
STOP_REASONS = {**_first_wins(FINISH_REASONS), "function_call": "tool_use"}
# HTTP status -> Anthropic error type. 503 is what the gateway answers when every backend is
# down or busy: an Anthropic client retries on overloaded_error as it would on 529.
ERROR_TYPES = {**_first_wins(STATUS_FOR_TYPE), 422: "invalid_request_error", 503: "overloaded_error"}


def stop_reason(finish_reason) -> str:
    if not isinstance(finish_reason, str):
        return "end_turn"
    return STOP_REASONS.get(finish_reason, "end_turn")


def error_type(status: int) -> str:
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error_body(kind: str, message: str) -> bytes:
    envelope = {"type": "error", "error": {"type": kind, "message": clean_text(message) or kind}}
    return json.dumps(envelope).encode()


def anthropic_error(status: int, error: OpenAIError) -> bytes:
    """The gateway's error (OpenAI-shaped) as Anthropic's ``{"type":"error","error":{...}}``."""
    return anthropic_error_body(error_type(status), error.message)


def anthropic_error_event(error: OpenAIError) -> bytes:
    """The same envelope as an SSE ``error`` event, for a stream that fails after its 200."""
    return b"event: error\ndata: " + anthropic_error(error.status, error) + b"\n\n"


def anthropic_usage(openai_usage) -> dict:
    """OpenAI usage -> Anthropic usage: the inverse of the adapter's ``response.usage``.

    OpenAI's ``prompt_tokens`` includes the cached tokens; Anthropic's ``input_tokens`` does not.
    """
    data = openai_usage if isinstance(openai_usage, dict) else {}
    details = data.get("prompt_tokens_details")
    cached = count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    prompt = count(data.get("prompt_tokens"))
    return {
        "input_tokens": max(0, prompt - cached),
        "output_tokens": count(data.get("completion_tokens")),
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def message_id(openai_id) -> str:
    text = openai_id if isinstance(openai_id, str) and openai_id else f"{time.time_ns()}"
    return text if text.startswith("msg_") else f"msg_{text}"


def tool_input(arguments) -> dict:
    """A tool call's ``arguments`` (a JSON string) as the object Anthropic's ``input`` must be."""
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = parse_json(arguments)
    except ValueError:
        value = None
    # A model that wrote broken JSON: keep what it wrote rather than lose it.
    return value if isinstance(value, dict) else {"_arguments": arguments}


def reasoning_text(message: dict) -> str:
    """The reasoning an upstream returned: DeepSeek's and xAI's ``reasoning_content``, others' ``reasoning``."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def thinking_blocks(message: dict) -> list[dict]:
    """Thinking blocks: the signed ``thinking_blocks`` an answer carried, else its reasoning text unsigned."""
    given = message.get("thinking_blocks")
    blocks = []
    for block in given if isinstance(given, list) else ():
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "thinking":
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": _text(block.get("thinking")),
                    "signature": _text(block.get("signature")),
                }
            )
        elif kind == "redacted_thinking":
            blocks.append({"type": "redacted_thinking", "data": _text(block.get("data"))})
    if blocks:
        return blocks
    reasoning = reasoning_text(message)
    return [{"type": "thinking", "thinking": reasoning, "signature": ""}] if reasoning else []


def from_openai_completion(chat_completion, requested_model: str) -> dict:
    """An OpenAI ``chat.completion`` as an Anthropic ``message``; ``ProviderError`` if it is none."""
    if not isinstance(chat_completion, dict):
        raise ProviderError("the backend's answer is not a JSON object")
    choices = chat_completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise ProviderError("the backend's answer has no choices[0].message")
    content = thinking_blocks(message)
    text = _message_text(message.get("content"))
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str):
        text = refusal
    if text:
        content.append({"type": "text", "text": text})
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": _text(call.get("id")) or f"toolu_{len(content)}",
                "name": _text(function.get("name")),
                "input": tool_input(function.get("arguments")),
            }
        )
    finish = choice.get("finish_reason")
    reason = stop_reason(finish)
    if reason == "end_turn" and any(block["type"] == "tool_use" for block in content):
        reason = "tool_use"  # some upstreams say "stop" after a tool call
    return {
        "id": message_id(chat_completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": anthropic_usage(chat_completion.get("usage")),
    }


def _message_text(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text(part.get("text")) for part in content if isinstance(part, dict))
    return ""


def _text(value) -> str:
    return value if isinstance(value, str) else ""
