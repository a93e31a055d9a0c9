"""What the client reads from the gateway: one small protocol, and its implementation over
a ``gateway.pipeline.Gateway``.

Every method is a plain read of in-memory state (no ORM, no IO), called on the event loop
once per heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from eldric_cloud.controller.protocol import BackendStatus, MinuteFigures
from eldric_cloud.controller.window import MinuteWindow


class LoadSource(Protocol):
    def worker_id(self) -> str: ...
    def uptime_seconds(self) -> int: ...
    def status(self) -> str: ...  # healthy, degraded, unhealthy, draining
    def inflight(self) -> int: ...
    def active_connections(self) -> int: ...
    def backends(self) -> Sequence[BackendStatus]: ...
    def models(self) -> Sequence[str]: ...
    def last_minute(self) -> MinuteFigures: ...
    def license_tier(self) -> str: ...


class GatewayLoadSource:
    """``LoadSource`` over a running gateway.

    ``connections`` counts the server's open client connections (Daphne's or uvicorn's);
    without it, ``active_connections`` reports the requests in flight, the closest figure
    the gateway itself knows. ``window`` counts only while it is among the gateway's
    observers (``attach`` and ``observe`` put it there).
    """

    def __init__(self, gateway, *, window: MinuteWindow, connections: Callable[[], int] | None = None) -> None:
        self.gateway = gateway
        self.window = window
        self._connections = connections

    @classmethod
    def attach(
        cls, gateway, *, connections: Callable[[], int] | None = None, observe: bool = True
    ) -> GatewayLoadSource:
        source = cls(gateway, window=MinuteWindow(), connections=connections)
        source.observe(observe)
        return source

    def observe(self, on: bool = True) -> None:
        """Count requests in the window (or stop): only while a controller is configured does
        every request pay for it. On the serving loop, or before serving starts."""
        observers = self.gateway.observers
        if on and self.window not in observers:
            observers.append(self.window)
        elif not on and self.window in observers:
            observers.remove(self.window)

    def worker_id(self) -> str:
        return self.gateway.snapshots.current.worker_id

    def uptime_seconds(self) -> int:
        return int(time.monotonic() - self.gateway.started_at)

    def status(self) -> str:
        if self.gateway.draining:
            return "draining"
        from gateway.views import health_report

        return health_report(self.gateway)["status"]

    def inflight(self) -> int:
        return self.gateway.inflight

    def active_connections(self) -> int:
        if self._connections is None:
            return self.gateway.inflight
        try:
            return int(self._connections())
        except Exception:
            return self.gateway.inflight

    def backends(self) -> list[BackendStatus]:
        from gateway.routing import backend_state

        board = self.gateway.breakers
        return [
            BackendStatus(
                name=route.name,
                kind=route.kind,
                state=backend_state(route, board),
                models=route.model_count,
                latency_ms=route.latency_ms,
                priority=route.priority,
            )
            for route in self.gateway.snapshots.current.backends.values()
        ]

    def models(self) -> list[str]:
        # Every model an enabled backend lists, as /v1/models aggregates them.
        return list(self.gateway.snapshots.current.model_routes)

    def last_minute(self) -> MinuteFigures:
        return self.window.figures()

    def license_tier(self) -> str:
        from orgs.licenses import license_health

        return license_health(self.gateway.snapshots.access)["tier"]
