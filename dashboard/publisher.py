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

from dashboard.frames import state_frame

logger = logging.getLogger(__name__)

GROUP = "dashboard"
LEASE_KEY = "eldric:dashboard:publisher"


class DashboardPublisher:
    def __init__(self, *, interval: float, models_every: float) -> None:
        self.interval = interval
        self.models_every = models_every
        self.token = secrets.token_hex(8)
        self.subscribers = 0
        self.published = 0  # frames this process sent to the group
        self._task: asyncio.Task | None = None
        self._models_digest: str | None = None
        self._models_sent_at = 0.0

    @classmethod
    def from_settings(cls) -> DashboardPublisher:
        return cls(
            interval=settings.ELDRIC_DASHBOARD_PUSH_SECONDS,
            models_every=settings.ELDRIC_DASHBOARD_MODELS_EVERY_SECONDS,
        )

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
        text, digest = state_frame(previous_models_digest=None if resend else self._models_digest)
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
