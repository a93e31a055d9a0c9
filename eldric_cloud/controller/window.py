"""Requests, errors and median latency over the last minute, kept in memory.

A request observer (``Gateway.observers``): ``request_finished`` runs on the event loop and
only adds to one of 60 one-second slots. The traffic recorder's roll-ups are per minute and
live in the database, too coarse and too far for a heartbeat every 30 s; this window counts
the same way (same excluded dialects, ``ctx.is_error``, ``ctx.latency``, the same buckets).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from eldric_cloud.controller.protocol import MinuteFigures
from traffic.buckets import LATENCY_BOUNDS, LATENCY_BUCKETS, bucket_index, percentile
from traffic.recorder import NOT_COUNTED

SLOTS = 60


class MinuteWindow:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Per slot: the second it holds, requests, errors, latency histogram.
        self._seconds = [-1] * SLOTS
        self._requests = [0] * SLOTS
        self._errors = [0] * SLOTS
        self._hist = [[0] * LATENCY_BUCKETS for _ in range(SLOTS)]

    def request_finished(self, ctx) -> None:
        if getattr(ctx, "dialect", None) in NOT_COUNTED:
            return
        second = int(self._clock())
        slot = second % SLOTS
        if self._seconds[slot] != second:
            self._seconds[slot] = second
            self._requests[slot] = self._errors[slot] = 0
            self._hist[slot] = [0] * LATENCY_BUCKETS
        self._requests[slot] += 1
        if getattr(ctx, "is_error", False):
            self._errors[slot] += 1
        latency = getattr(ctx, "latency", None)
        if isinstance(latency, int | float) and latency >= 0:
            self._hist[slot][bucket_index(LATENCY_BOUNDS, latency)] += 1

    def figures(self) -> MinuteFigures:
        now = int(self._clock())
        requests = errors = 0
        hist = [0] * LATENCY_BUCKETS
        for slot in range(SLOTS):
            if now - SLOTS < self._seconds[slot] <= now:
                requests += self._requests[slot]
                errors += self._errors[slot]
                for index, count in enumerate(self._hist[slot]):
                    hist[index] += count
        p50 = percentile(LATENCY_BOUNDS, hist, 0.5)
        return MinuteFigures(
            requests=requests, errors=errors, p50_latency_ms=round(p50 * 1000, 1) if p50 is not None else None
        )
