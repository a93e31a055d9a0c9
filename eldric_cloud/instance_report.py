"""What a running eldric-cloudd says of itself at each instance heartbeat: start time, uptime,
load and its controller client's state, stored on its ``WorkerIdentity`` row so that the admin
and the dashboard of every instance sharing the database can show every instance.

Called from the heartbeat thread, never from a request. It reads only in-memory figures:
the gateway's requests in flight, the server's open connections, the traffic recorder's
running totals (so rates cost the request path nothing) and /proc through ``SystemSampler``.
Rates are over the time since the previous report.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from eldric_cloud.controller.client import controller_health
from eldric_cloud.controller.source import GatewayLoadSource
from eldric_cloud.controller.system import SystemSampler
from eldric_cloud.controller.window import MinuteWindow
from eldric_cloud.version import package_version
from traffic.aggregate import Counters
from traffic.buckets import LATENCY_BOUNDS, percentile

RATES = ("requests_total", "errors_total", "requests_per_minute", "errors_per_minute", "p50_latency_ms")


class InstanceReporter:
    def __init__(
        self,
        gateway,
        *,
        server: str,
        connections: Callable[[], int] | None = None,
        sampler: SystemSampler | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway = gateway
        self.server = server
        self.version = package_version()
        # The controller heartbeat's reads of the same figures (no window: rates come from totals).
        self._source = GatewayLoadSource(gateway, window=MinuteWindow(), connections=connections)
        self._sampler = sampler or SystemSampler()
        self._clock = clock
        uptime = clock() - gateway.started_at
        self.started_at = (datetime.now(UTC) - timedelta(seconds=uptime)).isoformat(timespec="seconds")
        # The traffic recorder keeps running totals (``TrafficRecorder.totals``).
        self._recorder = next((r for r in gateway.recorders if hasattr(r, "totals")), None)
        # The first report's rates are since start.
        self._previous = (gateway.started_at, Counters())

    def __call__(self) -> dict:
        now = self._clock()
        system = self._sampler.sample()
        return {
            "pid": os.getpid(),
            "version": self.version,
            "server": self.server,
            "started_at": self.started_at,
            "uptime_seconds": int(now - self.gateway.started_at),
            "draining": self.gateway.draining,
            "requests_in_flight": self._source.inflight(),
            "active_connections": self._source.active_connections(),
            **self._rates(now),
            "process_cpu_percent": system.process_cpu_percent,
            "process_rss_bytes": system.process_rss_bytes,
            "cpu_percent": system.cpu_percent,
            "memory_percent": system.memory_percent,
            "controller": controller_health(self.gateway.controller),
        }

    def _rates(self, now: float) -> dict:
        """Requests and errors since start, and per minute and the median latency since the
        last report (as of the traffic recorder's last flush)."""
        if self._recorder is None:  # no accounting in this process: nothing to say
            return dict.fromkeys(RATES)
        totals = self._recorder.totals()
        (since, before), self._previous = self._previous, (now, totals)
        per_minute = 60.0 / max(now - since, 1e-3)
        hist = [after - earlier for after, earlier in zip(totals.latency_hist, before.latency_hist, strict=True)]
        p50 = percentile(LATENCY_BOUNDS, hist, 0.5)
        return {
            "requests_total": totals.requests,
            "errors_total": totals.errors,
            "requests_per_minute": round((totals.requests - before.requests) * per_minute, 1),
            "errors_per_minute": round((totals.errors - before.errors) * per_minute, 1),
            "p50_latency_ms": None if p50 is None else round(p50 * 1000, 1),
        }
