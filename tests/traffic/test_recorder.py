"""The accounting observer: what a flush writes, and what happens when it cannot."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from django.db import OperationalError

from gateway.context import Usage
from tests.traffic.conftest import finished, sample, scrape
from traffic import services
from traffic.metrics import exposition
from traffic.models import TrafficDay, TrafficEventMinute, TrafficMinute

pytestmark = pytest.mark.django_db


def rollup(backend: str = "alpha", model: str = "gpt-4o") -> TrafficMinute:
    return TrafficMinute.objects.get(backend=backend, model=model)


def test_a_flush_adds_requests_errors_tokens_and_latency_to_the_minute_and_day_rollups(recorder):
    for _ in range(3):
        recorder.request_finished(finished(usage=Usage(10, 5, cached_tokens=2, reasoning_tokens=1), latency=0.2))
    recorder.request_finished(finished(status=502, error_code="upstream_unreachable", latency=3.0, ttfb=None))
    recorder.request_finished(finished(status=400, error_code="invalid_request", stream=True, disconnected=True))
    recorder.flush()
    recorder.request_finished(finished(usage=Usage(1, 1)))
    recorder.flush()

    minute = rollup()
    assert (minute.requests, minute.errors, minute.errors_4xx, minute.errors_5xx) == (6, 2, 1, 1)
    assert (minute.prompt_tokens, minute.completion_tokens, minute.cached_tokens, minute.reasoning_tokens) == (
        31,
        16,
        6,
        3,
    )
    assert (minute.streams, minute.client_disconnects) == (1, 1)
    assert minute.latency_count == 6 and minute.latency_sum == pytest.approx(0.2 * 5 + 3.0)
    assert minute.ttft_count == 5  # the 502 never sent a byte
    # 0.2 s falls in the (0.1, 0.25] bucket, 3 s in (2.5, 5].
    assert minute.latency_b05 == 5 and minute.latency_b09 == 1
    day = TrafficDay.objects.get(backend="alpha", model="gpt-4o")
    assert (day.requests, day.errors, day.prompt_tokens) == (6, 2, 31)
    codes = dict(TrafficEventMinute.objects.filter(kind="error").values_list("code", "count"))
    assert codes == {"upstream_unreachable": 1, "invalid_request": 1}


def test_failovers_count_on_the_backend_that_failed_with_how_it_failed(recorder):
    recorder.request_finished(finished(backend="beta", failed=(("alpha", "connect_error", None),)))
    recorder.request_finished(
        finished(backend="gamma", failed=(("alpha", "upstream_error", 503), ("beta", "rate_limited", 429)))
    )
    recorder.flush()

    assert rollup("alpha").failovers == 2 and rollup("alpha").requests == 0
    assert rollup("beta").failovers == 1 and rollup("beta").requests == 1
    assert rollup("gamma").requests == 1 and rollup("gamma").failovers == 0
    events = set(TrafficEventMinute.objects.filter(kind="failover").values_list("backend", "code", "status"))
    assert events == {("alpha", "connect_error", 0), ("alpha", "upstream_error", 503), ("beta", "rate_limited", 429)}


def test_a_client_sent_model_name_never_becomes_a_label(recorder, metrics_dir, settings):
    recorder.request_finished(finished(model="my-secret-project-name", model_known=False))
    recorder.request_finished(finished(backend="", model="", model_known=False, status=400, latency=0.001))
    recorder.flush()

    assert set(TrafficMinute.objects.values_list("backend", "model")) == {("alpha", "other"), ("", "other")}
    assert b"my-secret-project-name" not in exposition(str(metrics_dir))


def test_model_and_error_code_labels_stay_bounded(metrics_dir, settings):
    from traffic.recorder import TrafficRecorder

    settings.ELDRIC_TRAFFIC_MAX_MODEL_LABELS = 2
    settings.ELDRIC_TRAFFIC_MAX_ERROR_CODES = 1
    recorder = TrafficRecorder(instance="test", flush_seconds=60)
    for index in range(5):
        recorder.request_finished(finished(model=f"model-{index}", status=500, error_code=f"code_{index}"))
    recorder.request_finished(finished(model="model-0", status=500, error_code="has spaces and {braces}"))
    recorder.flush()

    per_model = dict(TrafficMinute.objects.values_list("model", "requests"))
    assert per_model == {"model-0": 2, "model-1": 1, "other": 3}
    codes = {code for (code,) in TrafficEventMinute.objects.values_list("code").distinct()}
    assert codes == {"code_0", "other"}


def test_usage_is_kept_while_the_database_is_away_and_written_when_it_returns(recorder, monkeypatch, caplog):
    real_write = services.traffic_rollups_write
    outages = iter([True, True])

    def flaky_write(*, batch):
        if next(outages, False):
            raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")
        real_write(batch=batch)

    monkeypatch.setattr(services, "traffic_rollups_write", flaky_write)
    recorder.request_finished(finished(usage=Usage(7, 3)))
    with caplog.at_level(logging.WARNING, logger="traffic.recorder"):
        recorder.flush()
        recorder.request_finished(finished(usage=Usage(7, 3)))
        recorder.flush()
        assert not TrafficMinute.objects.exists()
        assert recorder.backlog == 1
        recorder.flush()

    assert (rollup().requests, rollup().prompt_tokens, rollup().completion_tokens) == (2, 14, 6)
    assert recorder.backlog == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot write roll-ups" in m for m in messages) == 1  # once per outage, not per flush
    assert any("database back" in m for m in messages)


def test_past_the_backlog_limit_the_oldest_minutes_are_dropped_and_counted(metrics_dir, settings, monkeypatch, caplog):
    from traffic.recorder import TrafficRecorder

    settings.ELDRIC_TRAFFIC_MAX_BACKLOG_ROWS = 2

    def down(*, batch):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(services, "traffic_rollups_write", down)
    recorder = TrafficRecorder(instance="test", flush_seconds=60)
    now = time.time()
    for minutes_ago in (3, 2, 1):
        recorder.request_finished(finished(at=now - minutes_ago * 60))
        recorder.request_finished(finished(at=now - minutes_ago * 60))
    with caplog.at_level(logging.ERROR, logger="traffic.recorder"):
        recorder.flush()

    assert recorder.backlog == 2
    assert any("dropped the oldest 1 roll-up rows (2 requests)" in r.getMessage() for r in caplog.records)
    samples = scrape(exposition(str(metrics_dir)).decode())
    assert sample(samples, "eldric_traffic_dropped_requests_total", reason="backlog") == 2


def test_a_full_queue_counts_what_it_could_not_take(metrics_dir, settings, caplog):
    from traffic.recorder import TrafficRecorder

    settings.ELDRIC_TRAFFIC_MAX_QUEUE = 3
    recorder = TrafficRecorder(instance="test", flush_seconds=60)
    for _ in range(5):
        recorder.request_finished(finished())
    with caplog.at_level(logging.ERROR, logger="traffic.recorder"):
        recorder.flush()

    assert rollup().requests == 3
    assert any("2 finished requests not counted" in r.getMessage() for r in caplog.records)
    samples = scrape(exposition(str(metrics_dir)).decode())
    assert sample(samples, "eldric_traffic_dropped_requests_total", reason="queue_full") == 2


def test_a_malformed_context_costs_only_itself(recorder):
    broken = finished()
    broken.attempts = None  # not iterable: reading its failovers fails
    recorder.request_finished(broken)
    recorder.request_finished(finished())
    recorder.flush()

    assert rollup().requests == 1


@pytest.mark.django_db(transaction=True)
def test_stop_writes_everything_still_queued(recorder):
    recorder.start()
    for _ in range(25):
        recorder.request_finished(finished(usage=Usage(2, 1)))
    recorder.stop()

    assert (rollup().requests, rollup().prompt_tokens) == (25, 50)


@pytest.mark.django_db(transaction=True)
async def test_the_event_loop_only_queues_and_an_explicit_flush_there_still_writes(recorder):
    recorder.request_finished(finished())
    recorder.request_finished(finished(status=503))
    assert await asyncio.to_thread(TrafficMinute.objects.count) == 0  # nothing written on the loop
    recorder.flush()

    minute = await asyncio.to_thread(rollup)
    assert (minute.requests, minute.errors) == (2, 1)


def test_the_flush_updates_prometheus_with_the_same_numbers(recorder, metrics_dir):
    recorder.request_finished(finished(usage=Usage(10, 4), latency=0.2))
    recorder.request_finished(finished(status=429, error_code="rate_limited", latency=0.03))
    recorder.request_finished(finished(backend="beta", failed=(("alpha", "timeout", None),)))
    recorder.states.update({"alpha": {"circuit": "open", "rate_limited_until": time.time() + 30}})
    recorder.flush()

    samples = scrape(exposition(str(metrics_dir)).decode())
    assert sample(samples, "eldric_requests_total", backend="alpha", model="gpt-4o", status_class="2xx") == 1
    assert sample(samples, "eldric_requests_total", backend="alpha", model="gpt-4o", status_class="4xx") == 1
    assert (
        sample(samples, "eldric_errors_total", backend="alpha", model="gpt-4o", status_class="4xx", code="rate_limited")
        == 1
    )
    assert sample(samples, "eldric_failovers_total", backend="alpha", model="gpt-4o", outcome="timeout") == 1
    assert sample(samples, "eldric_tokens_total", backend="alpha", model="gpt-4o", kind="prompt") == 10
    assert sample(samples, "eldric_request_duration_seconds_count", backend="alpha", model="gpt-4o") == 2
    assert sample(samples, "eldric_request_duration_seconds_bucket", backend="alpha", model="gpt-4o", le="0.05") == 1
    assert sample(samples, "eldric_request_duration_seconds_bucket", backend="alpha", model="gpt-4o", le="+Inf") == 2
    assert sample(samples, "eldric_overhead_seconds_count", backend="beta") == 1
    assert sample(samples, "eldric_backend_circuit_state", backend="alpha") == 2
    assert sample(samples, "eldric_backend_rate_limited", backend="alpha") == 1


def test_health_checks_and_catalogue_reads_are_not_traffic(recorder):
    for dialect in ("health", "openai.models", "openai.chat", "openai.embeddings"):
        ctx = finished(backend="", model_known=False)
        ctx.dialect = dialect
        recorder.request_finished(ctx)
    recorder.flush()

    assert rollup("", "other").requests == 2


def test_stopping_while_the_database_is_away_says_what_was_not_written(recorder, monkeypatch, caplog):
    def down(*, batch):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(services, "traffic_rollups_write", down)
    for _ in range(4):
        recorder.request_finished(finished())
    with caplog.at_level(logging.ERROR, logger="traffic.recorder"):
        recorder.stop()

    assert any("stopping with 1 roll-up rows (4 requests)" in r.getMessage() for r in caplog.records)
