"""What every accounting observer shares: a bounded queue the event loop appends to, and a
daemon thread that writes what was queued every ``flush_seconds``.

``request_finished`` runs on the event loop for every request, so it only appends (O(1), no
IO, no lock). The thread calls ``_write`` under a lock, so an explicit ``flush`` never
interleaves with it; a subclass's ``_write`` holds what the database did not take and says so.
``traffic`` is the bottom of the dependency order, so the usage recorder can build on this too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque

from django.db import connection

logger = logging.getLogger(__name__)


class BatchingObserver:
    # The flush thread's name, and what starts this observer's log lines.
    name = "accounting"
    log_as = "accounting"
    # Dialects (``RequestContext.dialect``) this observer does not keep.
    ignored: frozenset = frozenset()

    def __init__(self, *, flush_seconds: float, max_queue: int) -> None:
        if flush_seconds <= 0:
            raise ValueError("flush_seconds must be positive")
        self.flush_seconds = flush_seconds
        self.max_queue = max(1, max_queue)
        self._queue: deque = deque()
        # Written only on the event loop, read by the flusher: no lock needed for an int.
        self.queue_full = 0
        self._queue_full_reported = 0
        self._flush_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the hot path ----------------------------------------------------------------------
    def request_finished(self, ctx) -> None:
        """Queue a finished request. Called on the event loop; never blocks, never raises."""
        if getattr(ctx, "dialect", None) in self.ignored:
            return
        if len(self._queue) >= self.max_queue:
            self.queue_full += 1
            return
        self._queue.append(ctx)

    # --- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-flush", daemon=True)
        self._thread.start()

    def _stop_thread(self, timeout: float) -> bool | None:
        """Stop the thread, which writes once more on its way out. True when it ended in time,
        False when it is still writing, None when it never ran (nothing was written)."""
        self._stopping.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return None
        thread.join(timeout)
        return not thread.is_alive()

    def flush(self) -> bool:
        """Write everything queued so far (synchronously). True when nothing is left held."""
        if not _on_event_loop():
            return self._flush()
        # On an event loop the ORM refuses to run: flush from a helper thread instead.
        result: list[bool] = []
        helper = threading.Thread(target=lambda: result.append(self._flush_and_close()), name=f"{self.name}-now")
        helper.start()
        helper.join()
        return bool(result and result[0])

    # --- the flush thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stopping.wait(self.flush_seconds):
                self._flush()
            self._last_flush()
        finally:
            connection.close()

    def _last_flush(self) -> None:
        self._flush()

    def _flush_and_close(self) -> bool:
        try:
            return self._flush()
        finally:
            connection.close()

    def _flush(self) -> bool:
        with self._flush_lock:
            try:
                return self._write() is not False
            except Exception:
                logger.exception("%s: flush failed", self.log_as)
                return False

    def _write(self) -> bool | None:
        """Write what was queued; False when something is held for a later flush."""
        raise NotImplementedError

    def _drain(self) -> list:
        """What was queued since the last flush (the loop may append while this runs)."""
        queue = self._queue
        return [queue.popleft() for _ in range(len(queue))]

    def _unreported_queue_full(self) -> int:
        """Requests turned away by a full queue since the last report."""
        dropped = self.queue_full - self._queue_full_reported
        self._queue_full_reported += dropped
        return dropped


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
