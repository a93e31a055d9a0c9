"""OpenAI-compatible upstreams (OpenAI, xAI, DeepSeek, Groq, Together, Fireworks, Mistral, …).

The request body goes upstream byte for byte and answers are relayed untouched; only the
quirks that would break an OpenAI client are adapted (``providers.md`` §5):

* Mistral rejects fields it does not know (``stream_options``, ``max_completion_tokens``,
  ``reasoning_content`` in history) with 422 and tool-call ids that are not exactly nine
  letters or digits with 400, so its requests are rewritten, and only when one of those is
  present. Its errors come without the ``error`` wrapper.
* xAI answers a bad key with 400; the client gets the 401 it expects.
* Mistral's streamed tool-call deltas may lack ``index`` and ``type``, which the OpenAI SDK's
  stream helper needs: ``stream_translator`` numbers them (the only stream that is not relayed
  byte for byte).
* Together lists models as a bare array.
* DeepSeek's and xAI's ``reasoning_content`` and Groq's mid-stream error events pass through
  untouched: OpenAI clients ignore the former and raise on the latter.

Which provider a backend is (its *flavour*) comes from the URL's host, else from the backend
name, and is cached per (name, url), so passthrough backends pay one dict lookup per request.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from urllib.parse import urlsplit

from backends import capabilities
from backends.providers import validate
from backends.providers.base import (
    SSE_DONE,
    InvalidRequestError,
    ModelInfo,
    ModelPage,
    OpenAIError,
    Provider,
    ProviderError,
    UpstreamRequest,
    bearer_headers,
    generic_error,
    parse_json,
)
from backends.providers.content import model_items, upstream_name
from backends.providers.shapes import count, dumps, usage
from backends.providers.validate import encode_body

GENERIC = "generic"
# Host (or parent domain) -> flavour. Checked before the name: a host cannot lie.
FLAVOUR_HOSTS = {
    "api.openai.com": "openai",
    "api.x.ai": "xai",
    "api.deepseek.com": "deepseek",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
    "api.mistral.ai": "mistral",
}
FLAVOURS = frozenset(FLAVOUR_HOSTS.values())

MISTRAL_TOOL_CALL_ID = re.compile(r"[a-zA-Z0-9]{9}")
_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# Fields Mistral answers with 422 ``extra_forbidden`` when an assistant message carries them.
MISTRAL_FORBIDDEN_IN_ASSISTANT = ("reasoning_content", "reasoning")


# Together's ``type`` (together-python ``types/models.py`` ``ModelType``) -> capability.
TOGETHER_TYPES = {
    "chat": capabilities.CHAT,
    "language": capabilities.COMPLETION,
    "code": capabilities.COMPLETION,
    "image": capabilities.IMAGE,
    "embedding": capabilities.EMBEDDING,
    "moderation": capabilities.MODERATION,
    "rerank": capabilities.RERANK,
    "audio": capabilities.AUDIO,
    "transcribe": capabilities.AUDIO,
}


def model_capability(item) -> str:
    """What a ``/models`` entry says it is for: Together's ``type``, Mistral's
    ``capabilities.completion_chat``, else what the id says (``backends.capabilities.from_id``)."""
    if not isinstance(item, dict):
        return capabilities.UNKNOWN
    kind = item.get("type")
    if isinstance(kind, str) and kind in TOGETHER_TYPES:
        return TOGETHER_TYPES[kind]
    said = item.get("capabilities")
    if isinstance(said, dict) and said.get("completion_chat") is True:
        return capabilities.CHAT
    model_id = item.get("id")
    return capabilities.from_id(model_id) if isinstance(model_id, str) else capabilities.UNKNOWN


@lru_cache(maxsize=1024)
def flavour_for(name: str, url: str) -> str:
    """``mistral`` for ``https://api.mistral.ai/v1`` or a backend named ``mistral``/``mistral-eu``."""
    host = (urlsplit(url).hostname or "").lower()
    for known, flavour in FLAVOUR_HOSTS.items():
        if host == known or host.endswith("." + known):
            return flavour
    lowered = name.lower()
    for flavour in FLAVOURS:
        if lowered == flavour or lowered.startswith((flavour + "-", flavour + "_")):
            return flavour
    return GENERIC


@lru_cache(maxsize=4096)
def mistral_tool_call_id(original: str) -> str:
    """A nine-character alphanumeric id for ``original``: the same input always gives the same id,
    so an assistant's ``tool_calls[].id`` and the matching ``tool_call_id`` stay paired."""
    if MISTRAL_TOOL_CALL_ID.fullmatch(original):
        return original
    # 64 bits cover 62**9 (~2**53.6) evenly enough; a collision inside one conversation is negligible.
    number = int.from_bytes(hashlib.sha256(original.encode()).digest()[:8], "big")
    chars = []
    for _ in range(9):
        number, digit = divmod(number, 62)
        chars.append(_ALPHANUMERIC[digit])
    return "".join(chars)


def _mistral_id(value, param: str) -> str | None:
    """The rewritten id when ``value`` is a string Mistral would refuse, else None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise validate.invalid(param, "a string", value)
    if MISTRAL_TOOL_CALL_ID.fullmatch(value):
        return None
    try:
        return mistral_tool_call_id(value)
    except UnicodeEncodeError:
        raise InvalidRequestError(f"'{param}' contains a lone UTF-16 surrogate", param) from None


def _mistral_message(message, param: str):
    """``message`` itself when Mistral accepts it, else a corrected copy."""
    validate.mapping(message, param, required=True)
    fixed = message
    role = message.get("role")
    if role == "assistant":
        if any(key in message for key in MISTRAL_FORBIDDEN_IN_ASSISTANT):
            fixed = {k: v for k, v in message.items() if k not in MISTRAL_FORBIDDEN_IN_ASSISTANT}
        calls = validate.array(message.get("tool_calls"), f"{param}.tool_calls")
        if calls:
            new_calls = [_mistral_tool_call(call, f"{param}.tool_calls[{i}]") for i, call in enumerate(calls)]
            if any(new is not old for new, old in zip(new_calls, calls, strict=True)):
                fixed = {**fixed, "tool_calls": new_calls}
    elif role == "tool":
        new_id = _mistral_id(message.get("tool_call_id"), f"{param}.tool_call_id")
        if new_id is not None:
            fixed = {**message, "tool_call_id": new_id}
    return fixed


def _mistral_tool_call(call, param: str):
    validate.mapping(call, param, required=True)
    new_id = _mistral_id(call.get("id"), f"{param}.id")
    if new_id is not None:
        return {**call, "id": new_id}
    return call


def mistral_body(payload: dict, body: bytes) -> bytes:
    """The request as Mistral accepts it; ``body`` itself (not re-serialized) when it already is."""
    fixed = payload
    if "stream_options" in payload or "max_completion_tokens" in payload or "seed" in payload:
        fixed = dict(payload)
        fixed.pop("stream_options", None)
        if "max_completion_tokens" in fixed:
            limit = validate.integer(fixed.pop("max_completion_tokens"), "max_completion_tokens", minimum=1)
            if fixed.get("max_tokens") is None:
                fixed["max_tokens"] = limit
        # Mistral calls OpenAI's ``seed`` ``random_seed``.
        if "seed" in fixed:
            seed = validate.integer(fixed.pop("seed"), "seed")
            fixed.setdefault("random_seed", seed)
    messages = validate.array(payload.get("messages"), "messages")
    if messages:
        new_messages = [_mistral_message(m, f"messages[{i}]") for i, m in enumerate(messages)]
        if any(new is not old for new, old in zip(new_messages, messages, strict=True)):
            fixed = {**fixed, "messages": new_messages}
    if fixed is payload:
        return body
    return encode_body(fixed, payload)


def _validation_message(detail) -> str | None:
    """FastAPI/pydantic validation details (Mistral's 422) as one readable line; None when there are none.

    Accepts any JSON: entries it cannot read are skipped.
    """
    if isinstance(detail, dict):
        detail = detail.get("detail")
    if not isinstance(detail, list):
        return None
    parts = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = item.get("loc")
        if isinstance(loc, (list, tuple)):
            loc = ".".join(str(p) for p in loc if p != "body" and isinstance(p, (str, int)))
        elif not isinstance(loc, str):
            loc = ""
        msg = item.get("msg") if isinstance(item.get("msg"), str) else item.get("type")
        msg = msg if isinstance(msg, str) and msg else "invalid"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or None


_USAGE = re.compile(rb'"usage"\s*:\s*\{')


def openai_usage(reported: dict) -> dict:
    """An OpenAI-compatible usage object as the gateway accounts it: counts that are not
    non-negative integers become 0; the cached and reasoning details are kept when present."""
    prompt, completion = count(reported.get("prompt_tokens")), count(reported.get("completion_tokens"))
    prompt_details = reported.get("prompt_tokens_details")
    completion_details = reported.get("completion_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else None
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, dict) else None
    result = usage(
        prompt,
        completion,
        count(cached) if cached is not None else None,
        count(reasoning) if reasoning is not None else None,
    )
    # Some providers count reasoning outside completion_tokens but inside the total (providers.md §5).
    total = count(reported.get("total_tokens"))
    result["total_tokens"] = max(result["total_tokens"], total)
    return result


class MistralStream:
    """Mistral's stream with the tool-call ``index`` (and ``type``) its deltas may lack.

    Only events that carry tool calls are parsed and re-serialized; every other event goes
    out as Mistral wrote it. Without ``index`` the OpenAI SDK's stream helper fails.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._done = False
        # The usage Mistral reports in its last chunk (always, include_usage or not), for accounting.
        self.usage: dict | None = None
        # choice index -> tool-call ids in order of appearance
        self._ids: dict[int, list[str | None]] = {}

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data.replace(b"\r\n", b"\n") if b"\r" in data else data
        *events, self._buffer = self._buffer.split(b"\n\n")
        return [self._event(event + b"\n\n") for event in events if event.strip()]

    def close(self) -> list[bytes]:
        frames = [self._event(self._buffer + b"\n\n")] if self._buffer.strip() else []
        self._buffer = b""
        if not self._done:
            error = OpenAIError(502, "backend ended the stream early", type="api_error", code="upstream_stream_error")
            frames += [error.sse(), SSE_DONE]
        return frames

    def _event(self, event: bytes) -> bytes:
        if event.startswith(b"data: [DONE]") or event.startswith(b"data:[DONE]"):
            self._done = True
            return event
        if _USAGE.search(event):
            self._record_usage(event)
        if b'"tool_calls"' not in event:
            return event
        lines = event.split(b"\n")
        for number, line in enumerate(lines):
            if line.startswith(b"data:"):
                try:
                    chunk = parse_json(line[5:])
                except ValueError:
                    return event
                if self._number_tool_calls(chunk):
                    try:
                        lines[number] = b"data: " + dumps(chunk, separators=(",", ":"))
                    except ProviderError:
                        return event  # cannot be re-encoded: relay it as Mistral wrote it
                    return b"\n".join(lines)
        return event

    def _record_usage(self, event: bytes) -> None:
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                try:
                    chunk = parse_json(line[5:])
                except ValueError:
                    return
                reported = chunk.get("usage") if isinstance(chunk, dict) else None
                if isinstance(reported, dict):
                    self.usage = openai_usage(reported)
                return

    def _number_tool_calls(self, chunk) -> bool:
        changed = False
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            if not isinstance(calls, list):
                continue
            index = choice.get("index", 0)
            seen = self._ids.setdefault(index if isinstance(index, int) else 0, [])
            for call in calls:
                if not isinstance(call, dict):
                    continue
                call_id = call.get("id")
                if "index" not in call:
                    # A new id opens the next call; a fragment without one continues the last.
                    if call_id is not None and call_id in seen:
                        call["index"] = seen.index(call_id)
                    elif call_id is not None or not seen:
                        seen.append(call_id)
                        call["index"] = len(seen) - 1
                    else:
                        call["index"] = len(seen) - 1
                    changed = True
                if call_id is not None and "type" not in call:
                    call["type"] = "function"
                    changed = True
        return changed


class OpenAICompatibleProvider(Provider):
    kind = "openai_compatible"
    passthrough = True

    def chat_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        if flavour_for(route.name, route.url) == "mistral":
            body = mistral_body(payload, body)
        return UpstreamRequest("POST", f"{route.url}/chat/completions", bearer_headers(route), body)

    def stream_translator(self, route, payload: dict) -> MistralStream | None:
        """None (relay the bytes untouched) except where the provider's stream needs fixing."""
        if flavour_for(route.name, route.url) == "mistral":
            return MistralStream()
        return None

    def embeddings_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        return UpstreamRequest("POST", f"{route.url}/embeddings", bearer_headers(route), body)

    def completions_request(self, route, payload: dict, body: bytes) -> UpstreamRequest:
        """``/v1/completions`` byte for byte. Mistral has no such endpoint (only FIM), and its
        stream fixer reads chat chunks, so it is refused here rather than sent."""
        if flavour_for(route.name, route.url) == "mistral":
            raise InvalidRequestError(
                "mistral backends do not serve /v1/completions; use /v1/chat/completions for this model", "model"
            )
        return UpstreamRequest("POST", f"{route.url}/completions", bearer_headers(route), body)

    def models_request(self, route) -> UpstreamRequest:
        return UpstreamRequest("GET", f"{route.url}/models", bearer_headers(route, content_type=False))

    def parse_models(self, route, body: bytes) -> ModelPage:
        # Together answers with a bare array instead of {"object": "list", "data": [...]}.
        _, items = model_items(body, "data", bare_list=True)
        models = []
        for item in items:
            if isinstance(item, dict) and upstream_name(item.get("id")):
                created = item.get("created")
                valid = isinstance(created, int) and not isinstance(created, bool) and 0 <= created < 2**63
                models.append(ModelInfo(item["id"], created if valid else None, model_capability(item)))
        return ModelPage(models)

    def parse_model(self, route, body: bytes) -> ModelInfo:
        info = super().parse_model(route, body)
        data = parse_json(body)
        return ModelInfo(info.id, info.created, model_capability(data))

    def error(self, status: int, body: bytes, headers=None) -> OpenAIError:
        mapped = generic_error(status, body, headers)
        # xAI answers a bad key with 400 {"code": "invalid-argument", "error": "Incorrect API key…"}.
        if status == 400 and "api key" in mapped.message.lower() and mapped.code in ("invalid-argument", None):
            return OpenAIError(401, mapped.message, type="authentication_error", code="invalid_api_key")
        # Mistral's 422 carries pydantic's list of problems ({"detail": [...]} or as "message").
        if mapped.message[:1] in ("[", "{"):
            try:
                readable = _validation_message(parse_json(mapped.message))
            except ValueError:
                readable = None
            if readable:
                return OpenAIError(
                    mapped.status, readable, mapped.type, mapped.param, mapped.code, retry_after=mapped.retry_after
                )
        return mapped
