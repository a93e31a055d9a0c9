"""Retention: old records and old day roll-ups are deleted, in chunks, by a thin Celery task."""

from __future__ import annotations

import datetime
from datetime import UTC

import pytest

from gateway.context import Usage
from tests.usage.conftest import finished

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def write_at(when: datetime.datetime, count: int = 1) -> None:
    from usage.rows import row_from_context
    from usage.services import usage_batch_write

    usage_batch_write(
        rows=[row_from_context(finished(usage=Usage(1, 1), cost=0.0, at=when.timestamp()), "t") for _ in range(count)]
    )


def test_records_and_days_past_their_retention_are_deleted_in_chunks(settings):
    from usage.models import UsageDay, UsageRecord
    from usage.services import usage_retention_enforce

    settings.ELDRIC_USAGE_RECORDS_RETENTION_DAYS = 30
    settings.ELDRIC_USAGE_DAYS_RETENTION = 365
    settings.ELDRIC_USAGE_RETENTION_CHUNK = 2  # several chunks
    write_at(NOW - datetime.timedelta(days=400), 3)  # both past retention
    write_at(NOW - datetime.timedelta(days=31), 5)  # the records only
    write_at(NOW - datetime.timedelta(days=29), 1)  # kept

    deleted = usage_retention_enforce(now=NOW)

    assert deleted == {"records": 8, "days": 1}
    assert UsageRecord.objects.count() == 1
    assert sorted(str(d) for d in UsageDay.objects.values_list("day", flat=True)) == ["2026-10-31", "2026-11-02"]


def test_the_beat_schedule_runs_the_retention_task(settings):
    from usage.tasks import usage_retention_task

    entry = settings.CELERY_BEAT_SCHEDULE["usage-retention"]
    assert entry["task"] == usage_retention_task.name
    write_at(datetime.datetime.now(UTC) - datetime.timedelta(days=settings.ELDRIC_USAGE_RECORDS_RETENTION_DAYS + 2))
    assert usage_retention_task.apply().get() == {"records": 1, "days": 0}
