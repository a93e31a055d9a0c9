"""Percentiles from fixed buckets (pure)."""

import pytest

from traffic.buckets import LATENCY_BOUNDS, bucket_index, percentile


def test_a_value_falls_in_the_first_bucket_whose_bound_holds_it():
    assert bucket_index(LATENCY_BOUNDS, 0.005) == 0
    assert bucket_index(LATENCY_BOUNDS, 0.0051) == 1
    assert bucket_index(LATENCY_BOUNDS, 1000) == len(LATENCY_BOUNDS)


def test_percentiles_interpolate_inside_the_bucket_like_prometheus():
    bounds = (1.0, 2.0, 4.0)
    # 10 requests in (1, 2], 10 in (2, 4].
    counts = [0, 10, 10, 0]
    assert percentile(bounds, counts, 0.5) == pytest.approx(2.0)
    assert percentile(bounds, counts, 0.25) == pytest.approx(1.5)
    assert percentile(bounds, counts, 0.95) == pytest.approx(3.8)


def test_no_observations_give_no_percentile_and_the_overflow_bucket_gives_the_last_bound():
    assert percentile((1.0,), [0, 0], 0.5) is None
    assert percentile((1.0, 2.0), [0, 0, 5], 0.95) == 2.0
