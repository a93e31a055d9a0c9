"""OpenAI chat completion -> OpenAI Responses ``response`` object.

Sans-IO. ``ResponseShell`` holds what every answer of one request repeats (its id, the
request's echoed settings); ``from_chat_completion`` fills in the output and the usage. The
``output_text`` convenience is the SDK's: it joins the ``output_text`` parts itself.
"""

from __future__ import annotations

import os
import time

from backends.providers.base import ProviderError

# chat ``finish_reason`` -> Responses ``incomplete_details.reason`` (the answer was cut).
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """An id in OpenAI's style (``resp_…``, ``msg_…``): random, so two gateways never collide."""
    return f"{prefix}_{os.urandom(24).hex()}"


class ResponseShell:
    """The parts of a ``response`` that do not depend on the answer, built from the request."""

    def __init__(self, payload: dict, *, response_id: str | None = None, created_at: int | None = None) -> None:
        self.id = response_id or new_id("resp")
        self.created_at = created_at or int(time.time())
        self.payload = payload

    def response(self, status: str, output: list, usage: dict | None = None, **extra) -> dict:
        payload = self.payload
        text = payload.get("text") if isinstance(payload.get("text"), dict) else {}
        reasoning = payload.get("reasoning") if isinstance(payload.get("reasoning"), dict) else {}
        body = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": payload.get("instructions"),
            "max_output_tokens": payload.get("max_output_tokens"),
            "metadata": payload.get("metadata") or {},
            "model": payload.get("model"),
            "output": output,
            "parallel_tool_calls": payload.get("parallel_tool_calls", True),
            "previous_response_id": payload.get("previous_response_id"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": None},
            "store": payload.get("store", True) is not False,
            "temperature": payload.get("temperature", 1.0),
            "text": {"format": text.get("format") or {"type": "text"}},
            "tool_choice": payload.get("tool_choice", "auto"),
            "tools": payload.get("tools") or [],
            "top_p": payload.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": payload.get("user"),
        }
        body.update(extra)
        return body


def responses_usage(usage) -> dict | None:
    """Chat's usage object in the Responses form."""
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else 0
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": _count(cached), "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": _count(reasoning)},
        "total_tokens": max(prompt + completion, _count(usage.get("total_tokens"))),
    }


def message_item(item_id: str, text: str, status: str = "completed", refusal: str = "") -> dict:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if text or not refusal else []
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def reasoning_item(item_id: str, text: str, status: str = "completed") -> dict:
    return {
        "id": item_id,
        "type": "reasoning",
        "status": status,
        "summary": [],
        "content": [{"type": "reasoning_text", "text": text}],
    }


def from_chat_completion(chat, shell: ResponseShell) -> dict:
    """The ``response`` for a whole chat completion; ``ProviderError`` when it is not one."""
    if not isinstance(chat, dict):
        raise ProviderError("the answer is not a JSON object")
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    if choice is None:
        raise ProviderError("the answer has no choices")
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    output: list[dict] = []
    for key in ("reasoning_content", "reasoning"):
        thought = message.get(key)
        if isinstance(thought, str) and thought:
            output.append(reasoning_item(new_id("rs"), thought))
            break
    text = message.get("content") if isinstance(message.get("content"), str) else ""
    refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else ""
    if text or refusal:
        output.append(message_item(new_id("msg"), text, refusal=refusal))
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if not isinstance(call, dict):
            continue
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        call_id = _text(call.get("id")) or new_id("call")
        output.append(function_call_item(new_id("fc"), call_id, _text(function.get("name")), _arguments(function)))
    reason = INCOMPLETE.get(choice.get("finish_reason"))
    if reason is not None:
        return shell.response(
            "incomplete", output, responses_usage(chat.get("usage")), incomplete_details={"reason": reason}
        )
    return shell.response("completed", output, responses_usage(chat.get("usage")))


def _arguments(function: dict) -> str:
    arguments = function.get("arguments")
    return arguments if isinstance(arguments, str) else ""


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _count(value) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 53:
        return value
    return 0
