"""Usage records, written in batches from the pipeline's request events, never inline.

``request_finished`` runs on the event loop for every request: it appends the finished
context to a bounded queue (O(1), no IO, no lock) and returns. A daemon thread wakes every
``ELDRIC_USAGE_FLUSH_SECONDS``, turns what was queued into rows and writes them with their
daily roll-ups in one transaction per batch (``usage.services.usage_batch_write``).

Usage is never dropped silently:
- a full queue counts the requests it turns away and logs them at the next flush;
- a failed write keeps its rows and tries them again at the next flush (the write is all
  or nothing, so a retry cannot count twice); past ``ELDRIC_USAGE_MAX_BACKLOG`` held rows
  the oldest are dropped, counted and logged;
- ``stop`` (graceful shutdown) writes everything still queued, retrying until
  ``ELDRIC_USAGE_STOP_TIMEOUT_SECONDS``, and logs what it could not write.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from django.conf import settings
from django.db import connection

from traffic.batching import BatchingObserver
from usage.rows import NOT_RECORDED, RecordRow, row_from_context

logger = logging.getLogger(__name__)


class UsageRecorder(BatchingObserver):
    name = "usage"
    log_as = "usage"
    ignored = NOT_RECORDED

    def __init__(
        self,
        *,
        instance: str = "",
        flush_seconds: float = 1.0,
        max_queue: int = 100_000,
        max_backlog: int = 200_000,
        batch_size: int = 2000,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(flush_seconds=flush_seconds, max_queue=max_queue)
        self.instance = instance
        self.max_backlog = max(1, max_backlog)
        self.batch_size = max(1, batch_size)
        self.stop_timeout = stop_timeout
        self._pending: deque[RecordRow] = deque()
        # Counters: written by the flusher, read for reports.
        self.dropped_backlog = 0
        self.write_failures = 0
        self.written = 0
        self._failing_since: float | None = None

    @classmethod
    def from_settings(cls) -> UsageRecorder:
        return cls(
            instance=settings.ELDRIC_INSTANCE,
            flush_seconds=settings.ELDRIC_USAGE_FLUSH_SECONDS,
            max_queue=settings.ELDRIC_USAGE_MAX_QUEUE,
            max_backlog=settings.ELDRIC_USAGE_MAX_BACKLOG,
            batch_size=settings.ELDRIC_USAGE_BATCH_SIZE,
            stop_timeout=settings.ELDRIC_USAGE_STOP_TIMEOUT_SECONDS,
        )

    # --- life cycle ------------------------------------------------------------------------
    def stop(self) -> None:
        """Write everything queued so far, then stop the flush thread."""
        ended = self._stop_thread(self.stop_timeout + self.flush_seconds + 5)
        if ended is False:
            logger.error(
                "usage: the final write did not finish in time; %d queued requests and %d held records may be lost",
                len(self._queue),
                len(self._pending),
            )
            return
        if ended is None:
            self._last_flush()
        if self._queue or self._pending:
            logger.error(
                "usage: stopping with %d records the database did not take (%d still queued)",
                len(self._pending),
                len(self._queue),
            )

    @property
    def backlog(self) -> int:
        """Records held for a later write (the database was away)."""
        return len(self._pending)

    @property
    def queued(self) -> int:
        return len(self._queue)

    # --- the flush thread ------------------------------------------------------------------
    def _last_flush(self) -> None:
        """On the way out, retry until ``stop_timeout``: usage is not dropped silently."""
        deadline = time.monotonic() + self.stop_timeout
        while not self._flush() and time.monotonic() < deadline:
            time.sleep(min(0.5, self.flush_seconds))

    def _rows(self) -> None:
        for ctx in self._drain():
            try:
                self._pending.append(row_from_context(ctx, self.instance))
            except Exception:
                # One malformed context must not cost everybody else's records.
                logger.exception("usage: could not read a finished request")

    def _write(self) -> bool:
        self._rows()
        self._report_queue_full()
        from usage.services import usage_batch_write

        pending = self._pending
        while pending:
            batch = [pending[i] for i in range(min(self.batch_size, len(pending)))]
            try:
                usage_batch_write(rows=batch)
            except Exception as exc:
                self._write_failed(exc)
                return False
            for _ in batch:
                pending.popleft()
            self.written += len(batch)
        if self._failing_since is not None:
            logger.warning(
                "usage: database back after %.0fs; held records written", time.monotonic() - self._failing_since
            )
            self._failing_since = None
        return True

    def _report_queue_full(self) -> None:
        dropped = self._unreported_queue_full()
        if dropped:
            logger.error(
                "usage: %d finished requests not recorded: the queue was full (ELDRIC_USAGE_MAX_QUEUE=%d)",
                dropped,
                self.max_queue,
            )

    def _write_failed(self, exc: Exception) -> None:
        # A broken connection is reopened at the next flush.
        connection.close()
        self.write_failures += 1
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            logger.warning(
                "usage: cannot write records (%s: %s); keeping %d for the next flush",
                type(exc).__name__,
                str(exc)[:200],
                len(self._pending),
            )
        excess = len(self._pending) - self.max_backlog
        if excess > 0:
            for _ in range(excess):
                self._pending.popleft()
            self.dropped_backlog += excess
            logger.error(
                "usage: database unavailable for %.0fs; dropped the oldest %d records past ELDRIC_USAGE_MAX_BACKLOG=%d",
                time.monotonic() - self._failing_since,
                excess,
                self.max_backlog,
            )
