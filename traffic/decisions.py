"""The routing-decisions ring: the last requests this process answered, for the dashboard.

An observer like the traffic recorder (``gateway/pipeline.py`` hands it every finished
request), but it writes nothing anywhere: ``request_finished`` appends one small tuple to a
bounded deque (``ELDRIC_DASHBOARD_DECISIONS`` long) and returns. The tuple holds references
the request context already has (no copy, no formatting); the dashboard's publisher turns
them into rows when it pushes, once per interval for every open page.

What is kept is routing, never content: times, the model asked for, the backend that
answered, the status, the attempts with their outcome and the operator-worded reason.
Each process keeps its own ring: with several processes or instances, a page sees the
decisions of the process that serves its websocket (or, with Redis, of the publishing one).
"""

from __future__ import annotations

from collections import deque

from django.conf import settings

# Shown, not stored: a model name is the client's string and is cut at this length on the page.
MAX_MODEL_CHARS = 120
MAX_REASON_CHARS = 300
# Catalogue reads, health checks and usage reports route nowhere.
NOT_ROUTED = frozenset({"health", "openai.models", "eldric.usage"})


class DecisionRing:
    def __init__(self, *, size: int) -> None:
        self.size = max(1, size)
        self._ring: deque = deque(maxlen=self.size)

    @classmethod
    def from_settings(cls) -> DecisionRing:
        return cls(size=settings.ELDRIC_DASHBOARD_DECISIONS)

    # --- the hot path: one append -----------------------------------------------------------
    def request_finished(self, ctx) -> None:
        if ctx.dialect in NOT_ROUTED:
            return
        self._ring.append(
            (
                ctx.received_at,
                ctx.request_id,
                ctx.dialect,
                ctx.model,
                ctx.backend,
                ctx.status,
                ctx.latency,
                ctx.error_code,
                ctx.attempts,
            )
        )

    # --- the publisher's side ---------------------------------------------------------------
    def rows(self) -> list[dict]:
        """Newest first, JSON-ready. Runs on the publisher's thread while the event loop may
        append: ``deque.copy`` runs in C under the GIL, so the copy is consistent."""
        return [_row(entry) for entry in reversed(self._ring.copy())]


def _attempt(attempt) -> dict:
    return {
        "backend": attempt.backend,
        "outcome": attempt.outcome,
        "status": attempt.status,
        "reason": str(attempt.reason or "")[:MAX_REASON_CHARS],
    }


def _row(entry: tuple) -> dict:
    received_at, request_id, dialect, model, backend, status, latency, error_code, attempts = entry
    # Every attempt but the last failed and handed over; the last one answered, or failed last.
    last = attempts[-1] if attempts else None
    return {
        "at": round(received_at, 3),
        "request_id": request_id,
        "dialect": dialect,
        "model": str(model or "")[:MAX_MODEL_CHARS],
        "backend": backend,
        "status": status,
        "latency_ms": None if latency is None else round(latency * 1000, 1),
        "error_code": error_code,
        "failovers": [_attempt(attempt) for attempt in attempts[:-1]],
        "final": None if last is None or last.outcome == "ok" else _attempt(last),
    }
