"""Pushes a fresh dashboard state to every open dashboard websocket, every
``ELDRIC_DASHBOARD_PUSH_SECONDS``.

The state is read from the database, which every instance and the embedded Celery worker
write to (probe results, roll-ups, live circuit state, heartbeats): polling it is how events
of the worker process reach the page, whatever the channel layer. One state is built per
interval and sent to the ``dashboard`` group, not one per socket, so five open pages cost
what one does.

- Without ``REDIS_URL`` the channel layer is in-memory: the group holds this process's
  sockets, and each process publishes to its own.
- With ``REDIS_URL`` the layer is Redis and the group spans the instances: a lease in the
  (Redis) cache lets one process publish for all of them, and another takes over within
  three intervals when it stops.

The routing decisions are the exception: they are in the memory of the process that answered
the requests (``traffic.decisions``), so a frame carries the publishing process's own. With
several processes (or several instances on Redis) the panel shows that process's requests.

One publisher per process, built with the ASGI application (``eldric_cloud/asgi.py``); it
runs only while a socket of this process is open.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from dashboard.frames import state_frame
from dashboard.traffic_selectors import usage_tables
from traffic.decisions import DecisionRing

logger = logging.getLogger(__name__)

GROUP = "dashboard"
LEASE_KEY = "eldric:dashboard:publisher"


class DashboardPublisher:
    def __init__(
        self,
        *,
        interval: float,
        models_every: float,
        decisions: DecisionRing | None = None,
        usage_every: float = 30.0,
    ) -> None:
        self.interval = interval
        # The tokens-and-cost tables are most of a state's cost to read and change slowly: read
        # at most this often, and reused by the frames in between.
        self.usage_every = usage_every
        self._usage: tuple[float, dict] | None = None
        # This process's routing decisions (``traffic.decisions``): the gateway feeds it, every
        # frame this publisher builds carries it.
        self.decisions = decisions
        self.models_every = models_every
        self.token = secrets.token_hex(8)
        self.subscribers = 0
        self.published = 0  # frames this process sent to the group
        self._task: asyncio.Task | None = None
        self._models_digest: str | None = None
        self._models_sent_at = 0.0

    @classmethod
    def from_settings(cls, *, decisions: DecisionRing | None = None) -> DashboardPublisher:
        return cls(
            interval=settings.ELDRIC_DASHBOARD_PUSH_SECONDS,
            models_every=settings.ELDRIC_DASHBOARD_MODELS_EVERY_SECONDS,
            decisions=decisions,
            usage_every=settings.ELDRIC_DASHBOARD_USAGE_EVERY_SECONDS,
        )

    def usage_cached(self) -> dict | None:
        """The usage tables last read, while younger than ``usage_every``; else None."""
        held = self._usage
        if held is None or time.monotonic() - held[0] >= self.usage_every:
            return None
        return held[1]

    def _usage_tables(self) -> dict:
        tables = self.usage_cached()
        if tables is None:
            tables = usage_tables(today=timezone.now().date())
            self._usage = (time.monotonic(), tables)
        return tables

    def subscribe(self) -> None:
        self.subscribers += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="dashboard-publisher")

    def unsubscribe(self) -> None:
        self.subscribers = max(0, self.subscribers - 1)
        if not self.subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        layer = get_channel_layer()
        while True:
            await asyncio.sleep(self.interval)
            try:
                if await database_sync_to_async(self._lease_hold)():
                    text = await database_sync_to_async(self._frame)()
                    await layer.group_send(GROUP, {"type": "dashboard.state", "text": text})
                    self.published += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                # The database or Redis away for a moment: the pages keep their last state and say how old it is.
                logger.exception("dashboard: could not publish the state")

    def _frame(self) -> str:
        resend = time.monotonic() - self._models_sent_at >= self.models_every
        text, digest = state_frame(
            previous_models_digest=None if resend else self._models_digest,
            decisions=self.decisions,
            usage=self._usage_tables(),
        )
        if resend or digest != self._models_digest:
            self._models_sent_at = time.monotonic()
        self._models_digest = digest
        return text

    def _lease_hold(self) -> bool:
        """Whether this process publishes for the group. The lease outlives three intervals, so
        a publisher that stops (no socket left, or the process ended) is replaced soon."""
        timeout = max(1, int(self.interval * 3 + 0.999))
        if cache.add(LEASE_KEY, self.token, timeout=timeout):
            return True
        if cache.get(LEASE_KEY) == self.token:
            cache.touch(LEASE_KEY, timeout=timeout)
            return True
        return False
