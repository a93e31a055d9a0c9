"""The process's current routing snapshot.

The hot path reads ``current()``: a plain attribute, no IO. A daemon thread polls the
database's routing version and swaps in a rebuilt snapshot when it moves, so writes by the
API, the admin or Celery reach every gateway process within ``ELDRIC_SNAPSHOT_POLL_SECONDS``.
"""

from __future__ import annotations

import logging
import threading

from backends.snapshot import RoutingSnapshot

logger = logging.getLogger(__name__)


class SnapshotHolder:
    def __init__(self) -> None:
        self.snapshot = RoutingSnapshot()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def install(self, snapshot: RoutingSnapshot) -> None:
        # A single reference swap: readers see the old or the new snapshot, never a mix.
        self.snapshot = snapshot

    def refresh(self) -> bool:
        """Rebuild from the database if the routing version moved. Returns True if swapped."""
        from django.db import close_old_connections

        from backends.selectors import routing_snapshot_build, routing_version_get

        close_old_connections()
        if routing_version_get() == self.snapshot.version:
            return False
        self.install(routing_snapshot_build())
        return True

    def start(self, poll_seconds: float) -> None:
        """Build once now, then keep polling in the background."""
        self.refresh()
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, args=(poll_seconds,), name="snapshot-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, poll_seconds: float) -> None:
        while not self._stop.wait(poll_seconds):
            try:
                self.refresh()
            except Exception:
                # A database hiccup must not kill the refresher; routing keeps the last snapshot.
                logger.exception("routing snapshot refresh failed; keeping version %s", self.snapshot.version)


holder = SnapshotHolder()


def current() -> RoutingSnapshot:
    return holder.snapshot
