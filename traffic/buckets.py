"""Fixed histogram buckets, shared by the database roll-ups and the Prometheus histograms.

Both store per-bucket counts (not cumulative), so a flush adds the same numbers to both, and
percentiles over any window are computed by summing buckets. Pure: no Django.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

# Upper bounds in seconds; one more bucket past the last bound catches everything slower.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
LATENCY_BUCKETS = len(LATENCY_BOUNDS) + 1
# What the gateway itself adds: well under a millisecond when all is well.
OVERHEAD_BOUNDS: tuple[float, ...] = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
OVERHEAD_BUCKETS = len(OVERHEAD_BOUNDS) + 1


def bucket_index(bounds: Sequence[float], value: float) -> int:
    """The first bucket whose upper bound is >= ``value`` (Prometheus' ``le`` rule)."""
    return bisect_left(bounds, value)


def percentile(bounds: Sequence[float], counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a bucketed distribution, interpolated inside its bucket
    as Prometheus' ``histogram_quantile`` does; None without observations. A quantile in
    the overflow bucket answers the last bound (the most that can be said)."""
    total = sum(counts)
    if total <= 0:
        return None
    target = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= target:
            if index >= len(bounds):
                return bounds[-1]
            lower = bounds[index - 1] if index else 0.0
            upper = bounds[index]
            return lower + (upper - lower) * (target - seen) / count
        seen += count
    return bounds[-1]
