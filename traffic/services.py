"""Writes: roll-up increments, live backend state, retention, and the metrics directory."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone

from traffic.aggregate import Batch, Counters
from traffic.models import (
    ADDED_FIELDS,
    BackendLiveState,
    CircuitState,
    ProbeMinute,
    TrafficDay,
    TrafficEventDay,
    TrafficEventMinute,
    TrafficMinute,
)

logger = logging.getLogger(__name__)


# --- Roll-ups ------------------------------------------------------------------------------


def _upsert_adding(
    model: type[models.Model], *, keys: Sequence[str], added: Sequence[str], rows: Iterable[Sequence]
) -> None:
    """``INSERT … ON CONFLICT (keys) DO UPDATE SET a = a + EXCLUDED.a`` for every added
    column: one atomic statement per row, the same SQL on SQLite and Postgres, so several
    writers at once add up exactly. Rows must come sorted by key: every writer then locks
    rows in the same order and no two can deadlock."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    fields = [model._meta.get_field(name) for name in (*keys, *added)]
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    conflict = ", ".join(quote(model._meta.get_field(name).column) for name in keys)
    updates = ", ".join(
        f"{quote(f.column)} = {table}.{quote(f.column)} + EXCLUDED.{quote(f.column)}" for f in fields[len(keys) :]
    )
    sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    params = [
        [field.get_db_prep_value(value, connection) for field, value in zip(fields, row, strict=True)] for row in rows
    ]
    if params:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)


def _minute(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _day(epoch: int) -> date:
    return _minute(epoch).date()


@transaction.atomic
def traffic_rollups_write(*, batch: Batch) -> None:
    """Add a batch to the per-minute and per-day roll-ups, all or nothing: a failed write
    leaves the database as it was, so the caller may simply try the same batch again."""
    days: dict[tuple[date, str, str], Counters] = {}
    for (minute, backend, model), counters in batch.counters.items():
        day = days.get((_day(minute), backend, model))
        if day is None:
            day = days[(_day(minute), backend, model)] = Counters()
        day.add(counters)
    day_events: dict[tuple, int] = {}
    for (minute, *rest), count in batch.events.items():
        key = (_day(minute), *rest)
        day_events[key] = day_events.get(key, 0) + count

    def counter_rows(items):
        for key, counters in sorted(items, key=lambda item: item[0]):
            values = counters.columns()
            yield (*key, *(values[name] for name in ADDED_FIELDS))

    _upsert_adding(
        TrafficMinute,
        keys=("bucket", "backend", "model"),
        added=ADDED_FIELDS,
        rows=((_minute(row[0]), *row[1:]) for row in counter_rows(batch.counters.items())),
    )
    _upsert_adding(TrafficDay, keys=("day", "backend", "model"), added=ADDED_FIELDS, rows=counter_rows(days.items()))
    event_keys = ("backend", "model", "kind", "status", "code")
    _upsert_adding(
        TrafficEventMinute,
        keys=("bucket", *event_keys),
        added=("count",),
        rows=((_minute(key[0]), *key[1:], count) for key, count in sorted(batch.events.items())),
    )
    _upsert_adding(
        TrafficEventDay,
        keys=("day", *event_keys),
        added=("count",),
        rows=((*key, count) for key, count in sorted(day_events.items())),
    )


def traffic_retention_enforce(*, now: datetime | None = None) -> dict[str, int]:
    """Delete minute roll-ups older than ``ELDRIC_TRAFFIC_MINUTES_RETENTION_HOURS``, daily
    ones older than ``ELDRIC_TRAFFIC_DAYS_RETENTION`` days, and live state nobody has
    reported for a day. Returns what was deleted, per table."""
    now = now or timezone.now()
    minutes_before = now - timedelta(hours=settings.ELDRIC_TRAFFIC_MINUTES_RETENTION_HOURS)
    days_before = (now - timedelta(days=settings.ELDRIC_TRAFFIC_DAYS_RETENTION)).date()
    deleted = {
        "minutes": TrafficMinute.objects.filter(bucket__lt=minutes_before).delete()[0],
        "minute_events": TrafficEventMinute.objects.filter(bucket__lt=minutes_before).delete()[0],
        "days": TrafficDay.objects.filter(day__lt=days_before).delete()[0],
        "day_events": TrafficEventDay.objects.filter(day__lt=days_before).delete()[0],
        "live_states": BackendLiveState.objects.filter(updated_at__lt=now - timedelta(days=1)).delete()[0],
        "probe_minutes": ProbeMinute.objects.filter(bucket__lt=minutes_before).delete()[0],
    }
    if any(deleted.values()):
        logger.info("traffic retention: deleted %s", ", ".join(f"{n} {what}" for what, n in deleted.items() if n))
    return deleted


# --- Live state ----------------------------------------------------------------------------


@transaction.atomic
def backend_live_state_write(*, instance: str, states: dict[str, dict], now: datetime | None = None) -> None:
    """Replace this instance's live view of its backends. A backend it no longer reports
    loses its row (nothing known is nothing wrong: closed)."""
    now = now or timezone.now()
    rows = []
    for backend, state in sorted(states.items()):
        circuit = state.get("circuit") if isinstance(state, dict) else None
        if circuit not in CircuitState.values:
            circuit = CircuitState.CLOSED
        until = state.get("rate_limited_until") if isinstance(state, dict) else None
        rate_limited_until = (
            datetime.fromtimestamp(until, tz=UTC) if isinstance(until, int | float) and until > 0 else None
        )
        rows.append(
            BackendLiveState(
                instance=instance,
                backend=str(backend)[:64],
                circuit=circuit,
                rate_limited_until=rate_limited_until,
                updated_at=now,
            )
        )
    BackendLiveState.objects.filter(instance=instance).exclude(backend__in=[r.backend for r in rows]).delete()
    BackendLiveState.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["instance", "backend"],
        update_fields=["circuit", "rate_limited_until", "updated_at"],
    )


# --- Prometheus ----------------------------------------------------------------------------


def metrics_dir() -> Path:
    return Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.PROMETHEUS_MULTIPROC_DIR)


def metrics_dir_reset() -> None:
    """Empty the multi-process metrics directory. Call once when eldric-cloudd starts, before
    its worker does: files left by an earlier run would otherwise add to the new counters.
    This process's own files stay: it may have recorded start-up probes already, and its
    metric objects keep writing to them."""
    path = metrics_dir()
    path.mkdir(parents=True, exist_ok=True)
    own = f"_{os.getpid()}.db"
    for entry in path.iterdir():
        if entry.name.endswith(own):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def metrics_process_dead(pid: int | None = None) -> None:
    """Drop the live gauges (circuit state) of a process that is stopping."""
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid or os.getpid(), str(metrics_dir()))
    except OSError as exc:
        logger.warning("could not clear the metrics of process %s: %s", pid or os.getpid(), exc)


def probe_record(*, backend: str, status: str, latency_ms: float | None) -> None:
    """Health status and probe latency as metrics, in whichever process ran the probe, and
    in the probe history (``ProbeMinute``). Never raises: neither must fail a health check."""
    from django.apps import apps

    try:
        apps.get_app_config("traffic").probe_metrics().record(backend=backend, status=status, latency_ms=latency_ms)
    except Exception:
        logger.exception("backend %s: could not record probe metrics", backend)
    try:
        # A savepoint: the caller's transaction (the health record) survives a failure here.
        with transaction.atomic():
            probe_history_add(backend=backend, healthy=status == "healthy", latency_ms=latency_ms)
    except Exception:
        logger.exception("backend %s: could not record the probe in its history", backend)


def probe_history_add(*, backend: str, healthy: bool, latency_ms: float | None, now: datetime | None = None) -> None:
    bucket = (now or timezone.now()).replace(second=0, microsecond=0)
    timed = latency_ms is not None and latency_ms >= 0
    _upsert_adding(
        ProbeMinute,
        keys=("backend", "bucket"),
        added=("probes", "healthy", "latency_count", "latency_sum"),
        rows=[(backend, bucket, 1, int(healthy), int(timed), float(latency_ms) if timed else 0.0)],
    )
