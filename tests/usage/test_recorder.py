"""The usage recorder: records and daily roll-ups per request, written in batches, never lost silently."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, OperationalError

from gateway.context import Principal, Usage
from tests.usage.conftest import finished
from usage import services
from usage.models import UsageDay, UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


def make_key(name="ci", prefix="AbCd1234"):
    from orgs.models import ClientKey, Organisation

    org = Organisation.objects.get_or_create(slug="acme", defaults={"name": "Acme"})[0]
    return ClientKey.objects.create(organisation=org, name=name, prefix=prefix, key_hash=name.ljust(64, "0"))


def test_a_flush_writes_one_record_per_request_and_days_that_add_up_to_them(recorder):
    key = make_key()
    as_key = Principal("client_key", organisation="acme", key_id=str(key.id), name="ci")
    recorder.request_finished(finished(usage=Usage(100, 20, cached_tokens=10, reasoning_tokens=5), cost=0.00123))
    recorder.request_finished(finished(usage=Usage(50, 5), cost=0.0005, principal=as_key))
    recorder.request_finished(finished(usage=Usage(7, 3), cost=None, model="mystery"))  # unpriced
    recorder.request_finished(finished(status=502, error_code="upstream_unreachable", backend=""))
    assert recorder.flush()

    records = list(UsageRecord.objects.order_by("id"))
    assert len(records) == 4
    first, keyed, unpriced, failed = records
    assert (first.input_tokens, first.output_tokens, first.cached_tokens, first.reasoning_tokens) == (100, 20, 10, 5)
    assert first.cost_nanos == 1_230_000 and first.organisation == "default" and first.key is None
    assert first.latency_ms == 250 and first.instance == "test" and first.status == 200
    assert keyed.key_id == key.id and keyed.key_prefix == "AbCd1234" and keyed.organisation == "acme"
    assert unpriced.unpriced and unpriced.cost_nanos is None
    assert not failed.unpriced and failed.cost_nanos == 0 and failed.error_code == "upstream_unreachable"

    days = {(d.organisation, d.key_ref, d.model, d.backend): d for d in UsageDay.objects.all()}
    assert days[("acme", key.id, "gpt-test", "alpha")].key_prefix == "AbCd1234"
    assert days[("default", 0, "mystery", "alpha")].unpriced_requests == 1
    assert days[("default", 0, "gpt-test", "")].errors == 1
    for field in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens"):
        assert sum(getattr(d, field) for d in days.values()) == sum(getattr(r, field) for r in records)
    assert sum(d.cost_nanos for d in days.values()) == sum(r.cost_nanos or 0 for r in records)
    assert sum(d.requests for d in days.values()) == 4


def test_requests_of_one_day_add_to_the_same_row_across_flushes(recorder):
    for _ in range(3):
        recorder.request_finished(finished(usage=Usage(10, 1), cost=0.000001))
        recorder.flush()
    day = UsageDay.objects.get()
    assert (day.requests, day.input_tokens, day.cost_nanos) == (3, 30, 3000)


def test_records_fall_on_the_utc_day_their_request_arrived(recorder):
    late = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC).timestamp()
    recorder.request_finished(finished(usage=Usage(1, 1), cost=0.0, at=late))
    recorder.request_finished(finished(usage=Usage(1, 1), cost=0.0, at=late + 2))
    recorder.flush()
    assert sorted(str(d) for d in UsageDay.objects.values_list("day", flat=True)) == ["2026-03-01", "2026-03-02"]


def test_health_checks_and_catalogue_and_usage_reads_are_not_recorded(recorder):
    for dialect in ("health", "openai.models", "eldric.usage", "openai.chat", "openai.embeddings"):
        recorder.request_finished(finished(dialect=dialect))
    recorder.flush()
    assert UsageRecord.objects.count() == 2


def test_a_deleted_key_keeps_its_usage_and_its_prefix(recorder):
    key = make_key()
    as_key = Principal("client_key", organisation="acme", key_id=str(key.id))
    recorder.request_finished(finished(usage=Usage(5, 5), cost=0.1, principal=as_key))
    recorder.flush()
    key_id = key.id
    key.delete()
    record = UsageRecord.objects.get()
    assert record.key is None and record.key_prefix == "AbCd1234"
    day = UsageDay.objects.get()
    assert (day.key_ref, day.key_prefix) == (key_id, "AbCd1234")
    # A request by a key deleted before the flush is still recorded, unlinked, on the same day row.
    recorder.request_finished(finished(usage=Usage(5, 5), cost=0.1, principal=as_key))
    recorder.flush()
    assert UsageRecord.objects.filter(key__isnull=True).count() == 2
    assert UsageDay.objects.get().requests == 2


def test_a_full_queue_counts_and_logs_what_it_turned_away(caplog):
    from usage.recorder import UsageRecorder

    small = UsageRecorder(instance="t", flush_seconds=60, max_queue=3)
    for _ in range(5):
        small.request_finished(finished(usage=Usage(1, 1), cost=0.0))
    assert small.queue_full == 2
    with caplog.at_level(logging.ERROR, logger="usage.recorder"):
        small.flush()
    assert UsageRecord.objects.count() == 3
    assert "2 finished requests not recorded" in caplog.text and "ELDRIC_USAGE_MAX_QUEUE=3" in caplog.text


def test_a_database_error_keeps_the_batch_and_the_next_flush_writes_it_once(recorder, monkeypatch, caplog):
    real = services.usage_batch_write
    failures = iter([OperationalError("database is locked")])

    def flaky(*, rows):
        for exc in failures:
            raise exc
        real(rows=rows)

    monkeypatch.setattr(services, "usage_batch_write", flaky)
    for _ in range(4):
        recorder.request_finished(finished(usage=Usage(2, 2), cost=0.001))
    with caplog.at_level(logging.WARNING, logger="usage.recorder"):
        assert not recorder.flush()
    assert UsageRecord.objects.count() == 0 and recorder.backlog == 4
    assert "keeping 4 for the next flush" in caplog.text
    assert recorder.flush()
    assert UsageRecord.objects.count() == 4 and UsageDay.objects.get().requests == 4


def test_past_the_backlog_limit_the_oldest_records_are_dropped_counted_and_logged(monkeypatch, caplog):
    from usage.recorder import UsageRecorder

    def down(*, rows):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(services, "usage_batch_write", down)
    held = UsageRecorder(instance="t", flush_seconds=60, max_backlog=3)
    for _ in range(5):
        held.request_finished(finished(usage=Usage(1, 1), cost=0.0))
    with caplog.at_level(logging.ERROR, logger="usage.recorder"):
        held.flush()
    assert held.backlog == 3 and held.dropped_backlog == 2
    assert "dropped the oldest 2 records" in caplog.text


def test_a_failed_write_leaves_nothing_half_written():
    from usage.rows import row_from_context

    good = row_from_context(finished(usage=Usage(1, 1), cost=0.0), "t")
    bad = row_from_context(finished(usage=Usage(1, 1), cost=0.0, model="x" * 255), "t")
    # A negative token count breaks the column's check: the whole batch fails, days included.
    broken = type(bad)(**{**{f: getattr(bad, f) for f in bad.__slots__}, "input_tokens": -1})
    with pytest.raises(IntegrityError):
        services.usage_batch_write(rows=[good, broken])
    assert UsageRecord.objects.count() == 0 and UsageDay.objects.count() == 0


def test_stop_writes_everything_still_queued(recorder):
    recorder.start()
    for _ in range(25):
        recorder.request_finished(finished(usage=Usage(2, 1), cost=0.000002))
    recorder.stop()
    day = UsageDay.objects.get()
    assert (day.requests, day.input_tokens, day.cost_nanos) == (25, 50, 50_000)
    assert UsageRecord.objects.count() == 25


def test_stopping_while_the_database_is_away_says_what_was_not_written(monkeypatch, caplog):
    from usage.recorder import UsageRecorder

    def down(*, rows):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(services, "usage_batch_write", down)
    stopping = UsageRecorder(instance="t", flush_seconds=60, stop_timeout=0.3)
    for _ in range(4):
        stopping.request_finished(finished())
    with caplog.at_level(logging.ERROR, logger="usage.recorder"):
        stopping.stop()
    assert "stopping with 4 records the database did not take" in caplog.text
