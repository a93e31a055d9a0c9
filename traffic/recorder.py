"""The accounting observer: the gateway hands it every finished request.

``request_finished`` runs on the event loop for every request, so it only appends to a
queue (O(1), no IO, no lock). A daemon thread wakes every ``flush_seconds``, aggregates what
was queued in Python, updates the Prometheus metrics and adds the increments to the
database roll-ups in a few batched statements. No chat request ever waits on the database.

When the database is away, the aggregate is kept and written at a later flush; past
``ELDRIC_TRAFFIC_MAX_BACKLOG_ROWS`` rows the oldest minutes are dropped, logged and counted
(``eldric_traffic_dropped_requests_total``), never silently.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection

from traffic import services
from traffic.aggregate import Aggregator, Batch, Counters
from traffic.batching import BatchingObserver
from traffic.metrics import GatewayMetrics

logger = logging.getLogger(__name__)

# Health checks and catalogue reads reach no backend and would swamp the request counts of
# whoever polls them (load balancers, SDKs listing models): they are not traffic here.
NOT_COUNTED = frozenset({"health", "openai.models"})


class TrafficRecorder(BatchingObserver):
    name = "traffic"
    log_as = "traffic accounting"
    ignored = NOT_COUNTED

    def __init__(self, *, instance: str, flush_seconds: float, live_state: Callable[[], dict[str, dict]] = dict):
        super().__init__(flush_seconds=flush_seconds, max_queue=settings.ELDRIC_TRAFFIC_MAX_QUEUE)
        self.instance = instance
        self._live_state = live_state
        self._max_backlog = settings.ELDRIC_TRAFFIC_MAX_BACKLOG_ROWS
        self._live_refresh = settings.ELDRIC_TRAFFIC_LIVE_STATE_WINDOW_SECONDS / 3
        self._stop_timeout = settings.ELDRIC_TRAFFIC_STOP_TIMEOUT_SECONDS
        self._aggregator = Aggregator(
            max_models=settings.ELDRIC_TRAFFIC_MAX_MODEL_LABELS, max_codes=settings.ELDRIC_TRAFFIC_MAX_ERROR_CODES
        )
        self.metrics = GatewayMetrics()
        self._pending = Batch()
        self._failing_since: float | None = None
        self._last_states: dict | None = None
        self._last_states_written = 0.0
        # Everything counted since start, for the instance heartbeat's load figures: added
        # to by the flush thread, read by the heartbeat thread, never by a request.
        self._totals = Counters()
        self._totals_lock = threading.Lock()

    def totals(self) -> Counters:
        """A copy of what this process has counted since it started (as of the last flush)."""
        copy = Counters()
        with self._totals_lock:
            copy.add(self._totals)
        return copy

    # --- life cycle ------------------------------------------------------------------------
    def stop(self) -> None:
        """Write everything queued so far, then stop the flush thread."""
        ended = self._stop_thread(self._stop_timeout)
        if ended is False:
            logger.error(
                "traffic accounting: the final flush did not finish within %gs; "
                "usage of %d queued requests and %d held rows may be lost",
                self._stop_timeout,
                len(self._queue),
                len(self._pending),
            )
        elif ended is None:
            self.flush()
        if self._pending:
            logger.error(
                "traffic accounting: stopping with %d roll-up rows (%d requests) the database did not take",
                len(self._pending),
                self._pending.requests,
            )
        services.metrics_process_dead()

    @property
    def backlog(self) -> int:
        """Roll-up rows held for a later write (the database was away)."""
        return len(self._pending)

    # --- the flush thread ------------------------------------------------------------------
    def _aggregate(self) -> Batch:
        batch = Batch()
        for ctx in self._drain():
            try:
                self._aggregator.add(batch, ctx)
            except Exception:
                # One malformed context must not cost everybody else's accounting.
                logger.exception("traffic accounting: could not read a finished request")
        return batch

    def _write(self) -> bool:
        batch = self._aggregate()
        self._report_queue_full()
        with self._totals_lock:
            for counters in batch.counters.values():
                self._totals.add(counters)
        try:
            self.metrics.apply(batch)
        except Exception:
            logger.exception("traffic accounting: could not update the metrics")
        self._pending.merge(batch)
        states = self._read_live_state()
        if states is not None:
            try:
                self.metrics.live(states, time.time())
            except Exception:
                logger.exception("traffic accounting: could not update the live metrics")
        if self._pending:
            self._write_rollups()
        if states is not None:
            self._write_live_state(states)
        return not self._pending

    def _report_queue_full(self) -> None:
        dropped = self._unreported_queue_full()
        if dropped:
            self.metrics.dropped.labels("queue_full").inc(dropped)
            logger.error(
                "traffic accounting: %d finished requests not counted: the queue was full "
                "(ELDRIC_TRAFFIC_MAX_QUEUE=%d)",
                dropped,
                self.max_queue,
            )

    def _read_live_state(self) -> dict | None:
        try:
            states = self._live_state()
        except Exception:
            logger.exception("traffic accounting: could not read the live backend state")
            return None
        return states if isinstance(states, dict) else None

    def _write_rollups(self) -> None:
        try:
            services.traffic_rollups_write(batch=self._pending)
        except Exception as exc:
            self._write_failed(exc)
            return
        if self._failing_since is not None:
            logger.warning(
                "traffic accounting: database back after %.0fs; held roll-ups written",
                time.monotonic() - self._failing_since,
            )
            self._failing_since = None
        self._pending = Batch()

    def _write_failed(self, exc: Exception) -> None:
        # A broken connection is reopened at the next flush.
        connection.close()
        self.metrics.flush_failures.inc()
        if self._failing_since is None:
            self._failing_since = time.monotonic()
            logger.warning(
                "traffic accounting: cannot write roll-ups (%s: %s); keeping %d rows for the next flush",
                type(exc).__name__,
                str(exc)[:200],
                len(self._pending),
            )
        if len(self._pending) > self._max_backlog:
            rows, requests = self._pending.drop_oldest(self._max_backlog)
            self.metrics.dropped.labels("backlog").inc(requests)
            logger.error(
                "traffic accounting: database unavailable for %.0fs; dropped the oldest %d roll-up rows "
                "(%d requests) past ELDRIC_TRAFFIC_MAX_BACKLOG_ROWS=%d",
                time.monotonic() - self._failing_since,
                rows,
                requests,
                self._max_backlog,
            )

    def _write_live_state(self, states: dict) -> None:
        now = time.monotonic()
        if states == self._last_states and now - self._last_states_written < self._live_refresh:
            return
        try:
            services.backend_live_state_write(instance=self.instance, states=states)
        except Exception as exc:
            connection.close()
            logger.debug("traffic accounting: cannot write live state: %s", exc)
            return
        self._last_states = {name: dict(state) if isinstance(state, dict) else state for name, state in states.items()}
        self._last_states_written = now
