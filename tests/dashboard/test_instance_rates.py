"""The instance report's rates: over the time since the previous report, from the traffic
recorder's running totals (so counting costs the request path nothing)."""

from __future__ import annotations

import time
from types import SimpleNamespace

from eldric_cloud.instance_report import InstanceReporter
from traffic.aggregate import Counters
from traffic.buckets import LATENCY_BOUNDS, LATENCY_BUCKETS, bucket_index


class Totals:
    """What a traffic recorder has counted so far, grown by the test between reports."""

    def __init__(self) -> None:
        self.counted = Counters()

    def totals(self) -> Counters:
        copy = Counters()
        copy.add(self.counted)
        return copy

    def count(self, requests: int, errors: int, latency: float) -> None:
        hist = [0] * LATENCY_BUCKETS
        hist[bucket_index(LATENCY_BOUNDS, latency)] = requests
        self.counted.add(Counters(requests=requests, errors=errors, latency_count=requests, latency_hist=hist))


def test_rates_are_per_minute_since_the_last_report_and_totals_since_start():
    now = [time.monotonic()]
    recorder = Totals()
    gateway = SimpleNamespace(started_at=now[0], inflight=2, draining=False, controller=None, recorders=[recorder])
    reporter = InstanceReporter(gateway, server="daphne", clock=lambda: now[0])

    now[0] += 30
    recorder.count(requests=60, errors=6, latency=0.2)
    first = reporter()
    now[0] += 30
    recorder.count(requests=15, errors=0, latency=0.02)
    second = reporter()
    now[0] += 30
    third = reporter()

    assert (first["requests_per_minute"], first["errors_per_minute"]) == (120.0, 12.0)
    assert 100 < first["p50_latency_ms"] <= 250
    assert (second["requests_per_minute"], second["errors_per_minute"]) == (30.0, 0.0)
    assert second["p50_latency_ms"] <= 25  # only the last 30 s, not the slow first minute
    assert (third["requests_per_minute"], third["p50_latency_ms"]) == (0.0, None)
    assert (third["requests_total"], third["errors_total"]) == (75, 6)
    assert third["uptime_seconds"] == 90 and third["requests_in_flight"] == 2
    assert third["controller"] == {"configured": False, "state": "disabled"}


def test_without_accounting_the_rates_are_unknown_not_zero():
    gateway = SimpleNamespace(started_at=time.monotonic(), inflight=0, draining=False, controller=None, recorders=[])

    report = InstanceReporter(gateway, server="uvicorn")()

    assert report["requests_per_minute"] is None and report["requests_total"] is None
