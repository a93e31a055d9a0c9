"""What one request carries through the pipeline, and what observers receive when it ends.

parse → authenticate → route → attempts → relay → finish. Each stage writes what it learnt
into the ``RequestContext``; when the request ends, however it ends, the gateway hands the
same object to every observer (rate limits, the dashboard, usage records, metrics). After
that hand-over nobody writes to it again, so observers may keep it.

Times are ``time.monotonic()`` seconds, except ``received_at`` (wall clock, for records).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Attempt outcomes. The first group let the gateway try the next backend.
CONNECT_ERROR = "connect_error"
TIMEOUT = "timeout"
UPSTREAM_ERROR = "upstream_error"  # 5xx or 408
RATE_LIMITED = "rate_limited"  # 429, Anthropic's 529
REDIRECT = "redirect"
INVALID_RESPONSE = "invalid_response"  # a 2xx that is not what it claims
OK = "ok"
CLIENT_ERROR = "client_error"  # the upstream refused the request itself (4xx): not retried
REJECTED = "rejected"  # the adapter refused the request before sending
STREAM_ERROR = "stream_error"  # failed after the first byte reached the client
CANCELLED = "cancelled"  # the client went away, or the gateway shut down
TRANSLATE_ERROR = "translate_error"  # the adapter could not read a 2xx answer


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. Client keys (a later issue) fill in ``organisation`` and ``key_id``."""

    kind: str  # "anonymous", "master" or "client_key"
    organisation: str = ""
    key_id: str = ""
    name: str = ""


ANONYMOUS = Principal("anonymous")
MASTER = Principal("master", organisation="default", name="master key")


@dataclass(slots=True)
class Attempt:
    backend: str
    started: float
    ended: float = 0.0
    outcome: str = ""
    status: int | None = None
    # Why it failed, worded for an operator; never a key, never prompt content.
    reason: str = ""

    @property
    def duration(self) -> float:
        return max(0.0, self.ended - self.started) if self.ended else 0.0


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, data) -> Usage | None:
        """An OpenAI ``usage`` object (chat or embeddings), read defensively: an upstream may
        send anything here, and accounting must never fail a request."""
        if not isinstance(data, dict):
            return None
        prompt_details = data.get("prompt_tokens_details")
        completion_details = data.get("completion_tokens_details")
        return cls(
            prompt_tokens=_count(data.get("prompt_tokens")),
            completion_tokens=_count(data.get("completion_tokens")),
            cached_tokens=_count(prompt_details.get("cached_tokens")) if isinstance(prompt_details, dict) else 0,
            reasoning_tokens=(
                _count(completion_details.get("reasoning_tokens")) if isinstance(completion_details, dict) else 0
            ),
        )


def _count(value) -> int:
    # bool is an int; a token count is not.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 53:
        return value
    return 0


@dataclass(slots=True, eq=False)
class RequestContext:
    request_id: str
    # The protocol the client speaks: "openai.chat", "openai.embeddings"; later
    # "anthropic.messages" and "openai.responses" plug in here.
    dialect: str
    method: str = "POST"
    path: str = ""
    received: float = field(default_factory=time.monotonic)
    received_at: float = field(default_factory=time.time)
    principal: Principal = ANONYMOUS
    # The model the client asked for. A client-chosen string: never a metric label as is.
    model: str = ""
    stream: bool = False
    attempts: list[Attempt] = field(default_factory=list)
    first_upstream_byte: float | None = None
    first_client_byte: float | None = None
    done: float | None = None
    usage: Usage | None = None
    # The HTTP status the client got (0: none, the client left first). A stream that fails
    # after its 200 keeps the status and sets the error fields.
    status: int = 0
    error_type: str = ""
    error_code: str = ""
    # The backend whose answer the client got (the last attempt that reached one).
    backend: str = ""
    client_disconnected: bool = False
    # Ended by the gateway's shutdown, not by the client or the upstream.
    aborted: bool = False
    # Whether the model is in the catalogue (or was sent to the default backend as named),
    # so observers know whether ``model`` is safe to use as a label.
    model_known: bool = False
    # What the request cost in USD, from the price book, set when it ends and before
    # observers run. None: nothing to price, or a model with no price (see ``usage``).
    cost_usd: float | None = None

    # --- what the stages record ------------------------------------------------------------
    def attempt(self, backend: str) -> Attempt:
        attempt = Attempt(backend=backend, started=time.monotonic())
        self.attempts.append(attempt)
        return attempt

    def fail(self, status: int, error_type: str, code) -> None:
        self.status = status
        self.error_type = error_type
        self.error_code = "" if code is None else str(code)

    # --- what observers read ---------------------------------------------------------------
    @property
    def latency(self) -> float | None:
        return None if self.done is None else self.done - self.received

    @property
    def time_to_first_byte(self) -> float | None:
        """Until the first byte of the answer reached the client (time to first token, for streams)."""
        return None if self.first_client_byte is None else self.first_client_byte - self.received

    @property
    def upstream_seconds(self) -> float:
        return sum(a.duration for a in self.attempts)

    @property
    def overhead(self) -> float | None:
        """Time the gateway itself added: until the answer (a stream's first byte) reached the
        client, minus the time the upstreams took to give it."""
        if not self.stream:
            return None if self.latency is None else max(0.0, self.latency - self.upstream_seconds)
        if self.first_client_byte is None or self.first_upstream_byte is None or not self.attempts:
            return None
        *failed, last = self.attempts
        upstream = sum(a.duration for a in failed) + (self.first_upstream_byte - last.started)
        return max(0.0, self.first_client_byte - self.received - upstream)

    @property
    def failovers(self) -> list[Attempt]:
        """Attempts that failed and handed over to the next backend."""
        return self.attempts[:-1] if len(self.attempts) > 1 else []

    @property
    def is_error(self) -> bool:
        return self.status >= 400 or self.status == 0 or bool(self.error_type)
