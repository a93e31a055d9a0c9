"""Anthropic's Messages API (``POST /v1/messages``) as an ingress dialect.

The five parts a handler needs, in the order it uses them (``docs/translation/messages-ingress.md``
lists, per backend kind, what is carried, dropped and refused):

* ``parse_messages(body)`` -> ``(payload, model)``, or ``MessagesRequestError`` (render with ``.body()``);
* ``to_openai_chat(payload, dropped)`` -> the OpenAI chat request every non-Anthropic adapter takes;
* ``from_openai_completion(chat_completion, requested_model)`` -> an Anthropic ``message``;
* ``OpenAIToAnthropicStream(requested_model)`` -> Anthropic SSE events from OpenAI SSE bytes;
* ``anthropic_error(status, OpenAIError)`` / ``anthropic_error_event(error)`` -> Anthropic's error shape.

``count_tokens_estimate(payload)`` answers ``/v1/messages/count_tokens`` for non-Anthropic backends,
and ``DroppedFieldLog`` logs each dropped field once per backend.
"""

from __future__ import annotations

import logging

from gateway.dialects.anthropic_answer import (
    anthropic_error,
    anthropic_error_body,
    anthropic_error_event,
    anthropic_usage,
    error_type,
    from_openai_completion,
    stop_reason,
)
from gateway.dialects.anthropic_request import (
    MessagesRequestError,
    count_tokens_estimate,
    parse_messages,
    to_openai_chat,
)
from gateway.dialects.anthropic_stream import OpenAIToAnthropicStream

__all__ = [
    "DroppedFieldLog",
    "MessagesRequestError",
    "OpenAIToAnthropicStream",
    "anthropic_error",
    "anthropic_error_body",
    "anthropic_error_event",
    "anthropic_usage",
    "count_tokens_estimate",
    "error_type",
    "from_openai_completion",
    "parse_messages",
    "stop_reason",
    "to_openai_chat",
]

logger = logging.getLogger(__name__)


class DroppedFieldLog:
    """Logs a field the translation dropped once per (backend, field), not once per request.

    Built with the gateway at start-up (no module global). The set of pairs is bounded by
    backends x field paths, and field paths are generalised (no indexes), so it stays small;
    ``limit`` caps it anyway against clients that invent top-level field names.
    """

    def __init__(self, limit: int = 10_000, *, ingress: str = "messages", protocol: str = "Anthropic") -> None:
        self.limit = limit
        # Named in the warning: "<ingress> ingress: backend b cannot take these <protocol> fields".
        self.ingress = ingress
        self.protocol = protocol
        self._seen: set[tuple[str, str]] = set()

    def note(self, backend: str, fields) -> None:
        fresh = sorted(field for field in fields if (backend, field) not in self._seen)
        if not fresh:
            return
        if len(self._seen) < self.limit:
            self._seen.update((backend, field) for field in fresh)
        logger.warning(
            "%s ingress: backend %s cannot take these %s fields, dropped: %s",
            self.ingress,
            backend,
            self.protocol,
            ", ".join(fresh),
        )
