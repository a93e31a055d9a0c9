"""What SIGTERM does, whichever server runs: drain, then end what remains cleanly, then close.

1. The gateway turns unready (``GET /health/ready`` answers 503) and answers ``Connection: close``.
2. After ``ELDRIC_DRAIN_DELAY_SECONDS`` (for a load balancer's readiness probe to notice), the
   listener closes, without resetting the connections already queued on it.
3. Requests and streams in flight may finish, up to ``ELDRIC_DRAIN_SECONDS``; keep-alive
   connections close after their current response, idle ones once idle for a second.
4. Streams still open then end with an error event and ``data: [DONE]``, not a cut; requests
   still waiting for an upstream get 503.
5. The gateway flushes its accounting and closes its upstream clients. The embedded Celery
   worker is stopped after this, by the CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from eldric_cloud.server.limits import ServerLimits
from eldric_cloud.server.listener import notify_systemd

logger = logging.getLogger("eldric_cloud.server")

POLL_SECONDS = 0.05
IDLE_CLOSE_SECONDS = 1.0  # an idle keep-alive connection this old gets no more requests from a looping client
ABORT_GRACE_SECONDS = 2.0  # for the streams ended by abort_streams() to finish writing


class Connections(Protocol):
    """What a server exposes to the drain."""

    def begin_drain(self) -> None: ...
    def stop_listening(self) -> None: ...
    def count(self) -> int: ...
    def busy(self) -> int: ...
    def close_idle(self, idle_for: float) -> None: ...
    def close_all(self) -> None: ...


class Drain:
    """One drain per process; a second signal skips the waiting."""

    def __init__(self, *, gateway, connections: Connections, limits: ServerLimits, close_gateway: bool = True) -> None:
        self.gateway = gateway
        self.close_gateway = close_gateway  # uvicorn closes it in the app's lifespan shutdown
        self.connections = connections
        self.limits = limits
        self.hurry = asyncio.Event()
        self.task: asyncio.Task | None = None

    def request(self, reason: str) -> None:
        if self.task is None:
            logger.info(
                "%s: draining (up to %ss for requests in flight; send it again to hurry)",
                reason,
                self.limits.drain_seconds,
            )
            self.task = asyncio.ensure_future(self.run())
        else:
            logger.info("%s again: ending what is in flight now", reason)
            self.hurry.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.hurry.wait(), seconds)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        notify_systemd("STOPPING=1")
        self.gateway.begin_drain()
        self.connections.begin_drain()
        if self.limits.drain_delay_seconds > 0:
            await self._pause(self.limits.drain_delay_seconds)
        self.connections.stop_listening()

        deadline = loop.time() + self.limits.drain_seconds
        while self.connections.count() and loop.time() < deadline and not self.hurry.is_set():
            self.connections.close_idle(IDLE_CLOSE_SECONDS)
            await self._pause(POLL_SECONDS)

        remaining = self.connections.busy()
        if remaining:
            logger.warning("drain: %d requests still in flight; ending their streams", remaining)
            self.gateway.abort_streams()
            await self.gateway.wait_idle(ABORT_GRACE_SECONDS)
        self.connections.close_all()
        flush_deadline = loop.time() + ABORT_GRACE_SECONDS
        while self.connections.count() and loop.time() < flush_deadline:
            await asyncio.sleep(POLL_SECONDS)
        if self.close_gateway:
            await self.gateway.aclose()
        logger.info("drained")
