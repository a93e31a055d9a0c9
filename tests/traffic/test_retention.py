"""Old roll-ups go; recent ones stay. The beat task is a thin wrapper around the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from traffic.models import BackendLiveState, TrafficDay, TrafficEventDay, TrafficEventMinute, TrafficMinute
from traffic.tasks import traffic_retention_task

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def rows(now=NOW):
    for hours_ago in (1, 47, 49, 100):
        bucket = now - timedelta(hours=hours_ago)
        TrafficMinute.objects.create(bucket=bucket, backend="alpha", requests=hours_ago)
        TrafficEventMinute.objects.create(bucket=bucket, backend="alpha", kind="error", count=hours_ago)
    for days_ago in (1, 399, 401):
        day = (now - timedelta(days=days_ago)).date()
        TrafficDay.objects.create(day=day, backend="alpha", requests=days_ago)
        TrafficEventDay.objects.create(day=day, backend="alpha", kind="error", count=days_ago)
    BackendLiveState.objects.create(instance="gone", backend="alpha", updated_at=now - timedelta(days=2))
    BackendLiveState.objects.create(instance="here", backend="alpha", updated_at=now)


def test_minutes_past_48_hours_and_days_past_400_are_deleted(settings, monkeypatch):
    from traffic import services

    rows()
    monkeypatch.setattr(services.timezone, "now", lambda: NOW)
    deleted = traffic_retention_task()

    assert sorted(TrafficMinute.objects.values_list("requests", flat=True)) == [1, 47]
    assert sorted(TrafficEventMinute.objects.values_list("count", flat=True)) == [1, 47]
    assert sorted(TrafficDay.objects.values_list("requests", flat=True)) == [1, 399]
    assert sorted(TrafficEventDay.objects.values_list("count", flat=True)) == [1, 399]
    assert list(BackendLiveState.objects.values_list("instance", flat=True)) == ["here"]
    assert deleted == {
        "minutes": 2,
        "minute_events": 2,
        "days": 1,
        "day_events": 1,
        "live_states": 1,
        "probe_minutes": 0,  # the probe history, kept as long as the minutes (tests/dashboard/test_traffic.py)
    }


def test_retention_follows_its_settings(settings):
    from traffic.services import traffic_retention_enforce

    settings.ELDRIC_TRAFFIC_MINUTES_RETENTION_HOURS = 2
    settings.ELDRIC_TRAFFIC_DAYS_RETENTION = 30
    rows()
    traffic_retention_enforce(now=NOW)

    assert list(TrafficMinute.objects.values_list("requests", flat=True)) == [1]
    assert list(TrafficDay.objects.values_list("requests", flat=True)) == [1]


def test_the_beat_schedule_runs_retention_hourly(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["traffic-retention"]
    assert entry["task"] == "traffic.tasks.traffic_retention_task"
    assert entry["schedule"] == 3600.0
