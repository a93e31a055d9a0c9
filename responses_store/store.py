"""The gateway's side of the store: writes queued and batched off the request path, reads
done off the event loop, and only for a request that names ``previous_response_id``.

``save`` runs on the event loop: it appends to a bounded queue (O(1), no IO) and keeps the row
in ``_unwritten`` until the flush thread wrote it, so a client that continues a response right
away (the usual agent loop) finds it before the next flush. ``get`` looks there first, then
asks the database once (one unique-index probe) in a worker thread. Another instance sharing
the database sees a response after at most ``flush_seconds``.
"""

from __future__ import annotations

import asyncio
import logging

from django.db import close_old_connections, connection
from django.utils import timezone

from traffic.batching import BatchingObserver

logger = logging.getLogger(__name__)


class ResponseStore(BatchingObserver):
    name = "responses-store"
    log_as = "responses store"

    def __init__(self, *, days: int, flush_seconds: float = 1.0, max_queue: int = 10_000) -> None:
        super().__init__(flush_seconds=flush_seconds, max_queue=max_queue)
        self.days = days
        # response id -> row, from ``save`` until its write: written on the loop, popped by the
        # flusher (dict operations are atomic under the GIL).
        self._unwritten: dict[str, dict] = {}
        self.written = 0

    @classmethod
    def from_settings(cls) -> ResponseStore:
        from django.conf import settings

        return cls(
            days=settings.ELDRIC_RESPONSES_STORE_DAYS,
            flush_seconds=settings.ELDRIC_RESPONSES_STORE_FLUSH_SECONDS,
            max_queue=settings.ELDRIC_RESPONSES_STORE_MAX_QUEUE,
        )

    @property
    def enabled(self) -> bool:
        return self.days > 0

    # --- the hot path ----------------------------------------------------------------------
    def request_finished(self, ctx) -> None:
        """Finished requests are not what this observer keeps (``save`` is)."""

    def save(self, *, response_id: str, organisation: str, model: str, input_items: list, output_items: list) -> None:
        """Queue one answered response. Never blocks, never raises; a full queue drops it (logged)."""
        if not self.enabled:
            return
        if len(self._queue) >= self.max_queue:
            self.queue_full += 1
            return
        row = {
            "response_id": response_id,
            "organisation": organisation,
            "model": model[:256],
            "input_items": input_items,
            "output_items": output_items,
            "created_at": timezone.now(),
        }
        self._unwritten[response_id] = row
        self._queue.append(row)

    async def get(self, response_id: str, organisation: str) -> dict | None:
        """The stored response, or None (unknown, expired, or another organisation's)."""
        row = self._unwritten.get(response_id)
        if row is not None:
            return row if row["organisation"] == organisation else None
        return await asyncio.to_thread(_read, response_id, organisation)

    # --- the flush thread ------------------------------------------------------------------
    def _write(self) -> bool:
        from responses_store.services import stored_responses_write

        dropped = self._unreported_queue_full()
        if dropped:
            logger.error(
                "responses store: %d responses not stored: the queue was full (ELDRIC_RESPONSES_STORE_MAX_QUEUE=%d)",
                dropped,
                self.max_queue,
            )
        rows = self._drain()
        if not rows:
            return True
        try:
            stored_responses_write(rows=rows)
        except Exception as exc:
            connection.close()
            # Kept readable from memory until the next try; requeued in front of newer rows.
            self._queue.extendleft(reversed(rows))
            logger.warning("responses store: cannot write %d responses (%s); retrying", len(rows), type(exc).__name__)
            return False
        for row in rows:
            self._unwritten.pop(row["response_id"], None)
        self.written += len(rows)
        return True

    def stop(self) -> None:
        if self._stop_thread(self.flush_seconds + 10) is None:
            self._last_flush()
        if self._queue:
            logger.error("responses store: stopping with %d responses not written", len(self._queue))


def _read(response_id: str, organisation: str) -> dict | None:
    from responses_store.selectors import stored_response_get

    # A worker thread's connection may have gone stale since its last use.
    close_old_connections()
    try:
        return stored_response_get(response_id=response_id, organisation=organisation)
    finally:
        close_old_connections()
