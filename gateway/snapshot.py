"""The process's current snapshots: routing, access (organisations, licenses, keys) and prices.

The hot path reads ``SnapshotSource.current``, ``.access`` and ``.prices``: plain attributes,
no IO. A daemon thread polls the database's routing and access versions and swaps in a
rebuilt snapshot when one moves, so writes by the API, the admin or Celery reach every
gateway process within ``ELDRIC_SNAPSHOT_POLL_SECONDS``.

With Redis, writers also publish a notice (``orgs.change_notices``) and the shared-state task
calls ``wake()``: the refresher reads the versions at once, and polls only every
``safety_poll_seconds`` while ``subscribed``; should the subscription drop, it is back to the
fast poll.
"""

from __future__ import annotations

import logging
import threading

from backends.snapshot import RoutingSnapshot, SnapshotAssembler
from orgs.access import AccessSnapshot
from usage.pricing import PriceBook

logger = logging.getLogger(__name__)


class SnapshotSource:
    """``database=False`` gives a source that only changes by ``install`` (tests, tools)."""

    def __init__(
        self,
        snapshot: RoutingSnapshot | None = None,
        *,
        access: AccessSnapshot | None = None,
        prices: PriceBook | None = None,
        database: bool = True,
    ) -> None:
        self.current = snapshot or RoutingSnapshot()
        self.access = access or AccessSnapshot()
        self.prices = prices or PriceBook()
        self.database = database
        # Kept between rebuilds: a version bump re-reads and re-indexes only what changed
        # (a probe on one backend of a 100k-route catalogue costs that backend's routes).
        self._assembler = SnapshotAssembler()
        # ``refresh`` runs on the refresher thread, and at start-up or from a test on another.
        self._building = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Set by the shared-state task while it holds a Redis subscription to change notices.
        self.subscribed = False
        self.safety_poll_seconds = 30.0

    def wake(self) -> None:
        """A change notice arrived: re-read the versions now (thread-safe, non-blocking)."""
        self._wake.set()

    def install(self, snapshot: RoutingSnapshot) -> None:
        # A single reference swap: readers see the old or the new snapshot, never a mix.
        self.current = snapshot

    def install_access(self, access: AccessSnapshot, prices: PriceBook | None = None) -> None:
        if prices is not None:
            self.prices = prices
        self.access = access

    def refresh(self) -> bool:
        """Rebuild from the database what moved (routing, access). Returns True if anything was swapped.

        The poller keeps its one connection open between polls (Django closes connections
        only around its own requests, which never run on this thread); a failed query drops
        the connection so the next poll opens a fresh one.
        """
        from django.db import connection

        from backends.selectors import routing_snapshot_build, routing_version_get
        from orgs.access import access_snapshot_build
        from orgs.selectors import access_version_get
        from usage.selectors import price_book_build

        swapped = False
        # One build at a time: the assembler keeps state between builds.
        with self._building:
            try:
                # Access first: routing may depend on licenses (priority routing) and organisations.
                if access_version_get() != self.access.version:
                    self.install_access(access_snapshot_build(), price_book_build())
                    swapped = True
                if routing_version_get() != self.current.version:
                    self.install(routing_snapshot_build(assembler=self._assembler))
                    swapped = True
            except Exception:
                connection.close()
                raise
        return swapped

    def start(self, poll_seconds: float) -> None:
        """Build once now, then keep polling in the background."""
        if not self.database:
            return
        self.refresh()
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(poll_seconds,), name="snapshot-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)

    def _run(self, poll_seconds: float) -> None:
        from django.db import connection

        try:
            while True:
                self._wake.wait(self.safety_poll_seconds if self.subscribed else poll_seconds)
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    self.refresh()
                except Exception:
                    # A database hiccup must not kill the refresher; routing keeps the last snapshot.
                    logger.exception("routing snapshot refresh failed; keeping version %s", self.current.version)
        finally:
            connection.close()
