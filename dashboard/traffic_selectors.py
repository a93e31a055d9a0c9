"""Traffic reads for the dashboard, from the per-minute roll-ups (``traffic.models.TrafficMinute``)
the gateway's recorder writes off the request path, and usage from ``usage``'s daily roll-ups.

Latency and time to first token are stored as bucket counts per minute, so p50/p95 over a
minute, five minutes or an hour are sums of buckets (``traffic.buckets.percentile``). The
minute rows are kept ``ELDRIC_TRAFFIC_MINUTES_RETENTION_HOURS`` (48 h by default): the
24-hour view folds them into 5-minute points here.
"""

from __future__ import annotations

import operator
from datetime import datetime, timedelta

from django.db.models import Sum

from traffic.buckets import LATENCY_BOUNDS, percentile
from traffic.models import LATENCY_FIELDS, TTFT_FIELDS, ProbeMinute, TrafficMinute
from traffic.selectors import TrafficWindow
from usage.selectors import usage_summary

# range name -> (minutes per point, points)
RANGES = {"1h": (1, 60), "24h": (5, 288)}
SUMMED = ("requests", "errors", "failovers", "latency_sum", "latency_count", *LATENCY_FIELDS, *TTFT_FIELDS)
# At most this many rows per table (models are bounded by the recorder's label cap already).
MAX_BREAKDOWN_ROWS = 200
MAX_USAGE_ROWS = 500
# The probe-history bar: the last 24 hours in this many cells (30 minutes each).
PROBE_CELLS = 48
PROBE_HOURS = 24


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


# Counters travel as lists in ``SUMMED`` order: adding two is one ``map`` in C, which matters
# when every push folds the hour's rows three or four ways.
AT = {name: index for index, name in enumerate(SUMMED)}
LATENCY_SLICE = slice(AT[LATENCY_FIELDS[0]], AT[LATENCY_FIELDS[-1]] + 1)
TTFT_SLICE = slice(AT[TTFT_FIELDS[0]], AT[TTFT_FIELDS[-1]] + 1)


def _zero() -> list:
    return [0] * len(SUMMED)


def _add(into: list, values) -> None:
    into[:] = map(operator.add, into, values)


def _values(row: dict) -> list:
    return [row.get(name) or 0 for name in SUMMED]


def _figures(values: list | None, seconds: float) -> dict:
    """What one point or one table row shows, from summed counters (None: no traffic)."""
    values = values or _zero()
    requests = values[AT["requests"]]
    errors = values[AT["errors"]]
    latency = values[LATENCY_SLICE]
    ttft = values[TTFT_SLICE]
    return {
        "requests": requests,
        "requests_per_s": round(requests / seconds, 3),
        "errors": errors,
        "error_rate": round(errors / requests, 4) if requests else 0,
        "failovers": values[AT["failovers"]],
        "p50_ms": _ms(percentile(LATENCY_BOUNDS, latency, 0.5)),
        "p95_ms": _ms(percentile(LATENCY_BOUNDS, latency, 0.95)),
        "ttft_p50_ms": _ms(percentile(LATENCY_BOUNDS, ttft, 0.5)),
        "ttft_p95_ms": _ms(percentile(LATENCY_BOUNDS, ttft, 0.95)),
    }


def _start(now: datetime, step: int, points: int) -> datetime:
    minute = now.replace(second=0, microsecond=0)
    aligned = minute - timedelta(minutes=minute.minute % step)
    return aligned - timedelta(minutes=step * (points - 1))


def traffic_series(
    *, now: datetime, range_name: str = "1h", backend: str | None = None, model: str | None = None
) -> dict:
    """One point per step (1 min over the last hour, 5 min over the last 24 h), for the whole
    gateway or one backend or one model. Steps without traffic are zeros with null latencies,
    so the charts' time axes have no gaps."""
    step, points = RANGES[range_name]
    start = _start(now, step, points)
    rows = TrafficMinute.objects.filter(bucket__gte=start)
    if backend is not None:
        rows = rows.filter(backend=backend)
    if model is not None:
        rows = rows.filter(model=model)
    folded: dict[datetime, list] = {}
    for row in rows.values("bucket").annotate(**{name: Sum(name) for name in SUMMED}).order_by():
        offset = int((row["bucket"] - start).total_seconds() // 60) // step
        bucket = start + timedelta(minutes=offset * step)
        _add(folded.setdefault(bucket, _zero()), _values(row))
    series: dict[str, list] = {"t": []}
    for index in range(points):
        bucket = start + timedelta(minutes=index * step)
        series["t"].append(int(bucket.timestamp()))
        for name, value in _figures(folded.get(bucket), step * 60).items():
            series.setdefault(name, []).append(value)
    series.update(range=range_name, step_minutes=step, backend=backend, model=model)
    return series


# What one fetch of the last hour's minute rows reads: plain rows, no aggregation in SQL. The
# rows are already one per (minute, backend, model), so the sums happen here, once for the
# series, the tables, the sparklines and the 5-minute windows; building an ORM query with a
# few hundred SUM()s per push cost more CPU than all of this.
ROW_FIELDS = ("bucket", "backend", "model", *SUMMED)


def hour_rows(*, now: datetime, minutes: int = 60) -> list[tuple]:
    """(bucket, backend, model, counters in ``SUMMED`` order) for each row of the last hour."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    fetched = TrafficMinute.objects.filter(bucket__gte=start).order_by().values_list(*ROW_FIELDS)
    return [(row[0], row[1], row[2], row[3:]) for row in fetched]


def hour_series(rows: list[tuple], *, now: datetime) -> dict:
    """``traffic_series`` of the whole gateway over the last hour, from ``hour_rows``."""
    step, points = RANGES["1h"]
    start = _start(now, step, points)
    by_minute: dict[datetime, list] = {}
    for bucket, _, _, values in rows:
        _add(by_minute.setdefault(bucket, _zero()), values)
    series: dict[str, list] = {"t": []}
    for index in range(points):
        bucket = start + timedelta(minutes=index)
        series["t"].append(int(bucket.timestamp()))
        for name, value in _figures(by_minute.get(bucket), 60).items():
            series.setdefault(name, []).append(value)
    series.update(range="1h", step_minutes=step, backend=None, model=None)
    return series


def traffic_breakdown(rows: list[tuple], *, minutes: int = 60) -> dict:
    """Per backend and per model over the rows' hour: counts, error rate, p50/p95, TTFT."""
    by: dict[str, dict[str, list]] = {"backend": {}, "model": {}}
    for _, backend, model, values in rows:
        _add(by["backend"].setdefault(backend, _zero()), values)
        _add(by["model"].setdefault(model, _zero()), values)
    answer = {}
    for dimension, groups in by.items():
        table = [{"name": name, **_figures(summed, minutes * 60)} for name, summed in groups.items()]
        table.sort(key=lambda entry: (-entry["requests"], entry["name"]))
        answer[f"{dimension}s"] = table[:MAX_BREAKDOWN_ROWS]
    return answer


def backend_minutes(rows: list[tuple], *, now: datetime, minutes: int = 60) -> dict[str, dict[str, list]]:
    """backend -> per-minute mean latency (ms, null without requests), requests, errors and
    failovers over the last hour: the Backends panel's sparklines."""
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=minutes - 1)
    result: dict[str, dict[str, list]] = {}
    latency: dict[tuple[str, int], list[float]] = {}
    for bucket, backend, _, values in rows:
        index = int((bucket - start).total_seconds() // 60)
        if not backend or not 0 <= index < minutes:
            continue
        series = result.get(backend)
        if series is None:
            series = result[backend] = {"latency_ms": [None] * minutes}
            series.update({name: [0] * minutes for name in ("requests", "errors", "failovers")})
        for name in ("requests", "errors", "failovers"):
            series[name][index] += values[AT[name]]
        summed = latency.setdefault((backend, index), [0.0, 0])
        summed[0] += values[AT["latency_sum"]]
        summed[1] += values[AT["latency_count"]]
    for (backend, index), (total, count) in latency.items():
        result[backend]["latency_ms"][index] = round(total / count * 1000, 1) if count else None
    return result


def backend_windows(rows: list[tuple], *, now: datetime, minutes: int = 5) -> dict[str, TrafficWindow]:
    """backend -> its last ``minutes`` (the minute buckets that started within them), as
    ``traffic.selectors.backend_traffic`` counts them for the API."""
    since = now - timedelta(minutes=minutes)
    summed: dict[str, list] = {}
    for bucket, backend, _, values in rows:
        if bucket >= since:
            _add(summed.setdefault(backend, _zero()), values)
    windows = {}
    for backend, counters in summed.items():
        figures = _figures(counters, minutes * 60)
        windows[backend] = TrafficWindow(
            minutes=minutes,
            requests=figures["requests"],
            errors=figures["errors"],
            failovers=figures["failovers"],
            p50_ms=figures["p50_ms"],
            p95_ms=figures["p95_ms"],
        )
    return windows


def probe_history(*, now: datetime) -> dict[str, dict]:
    """backend -> uptime over the last 24 h (healthy probes / probes; None without probes)
    and the history bar: per 30-minute cell, the share of healthy probes (None: no probe)."""
    cell_minutes = PROBE_HOURS * 60 // PROBE_CELLS
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=cell_minutes * PROBE_CELLS - 1)
    rows = ProbeMinute.objects.filter(bucket__gte=start).values_list("backend", "bucket", "probes", "healthy")
    counts: dict[str, list[list[int]]] = {}
    for backend, bucket, probes, healthy in rows:
        cells = counts.setdefault(backend, [[0, 0] for _ in range(PROBE_CELLS)])
        index = min(PROBE_CELLS - 1, max(0, int((bucket - start).total_seconds() // 60) // cell_minutes))
        cells[index][0] += probes
        cells[index][1] += healthy
    history = {}
    for backend, cells in counts.items():
        probes = sum(c[0] for c in cells)
        healthy = sum(c[1] for c in cells)
        history[backend] = {
            "uptime_24h": round(healthy / probes, 4) if probes else None,
            "probes_24h": probes,
            "cells": [round(c[1] / c[0], 3) if c[0] else None for c in cells],
            "cell_minutes": cell_minutes,
        }
    return history


def usage_tables(*, today) -> dict:
    """Tokens and cost today (UTC) and since the first of the month, per organisation and per
    client key. Keys appear by name and 8-character prefix (what the admin shows), never whole."""
    month_start = today.replace(day=1)
    answer = {}
    for period, since in (("today", today), ("month", month_start)):
        organisations = usage_summary(group_by=("organisation",), day_from=since, max_groups=MAX_USAGE_ROWS)
        keys = usage_summary(group_by=("organisation", "key"), day_from=since, max_groups=MAX_USAGE_ROWS)
        answer[period] = {
            "since": since.isoformat(),
            "totals": organisations["totals"],
            "organisations": organisations["data"],
            "keys": keys["data"],
            "truncated": organisations["truncated"] or keys["truncated"],
        }
    return answer
