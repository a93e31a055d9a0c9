"""A failing backend is probed again after 1 s, 2 s, 4 s, … (capped at the health interval),
so one that comes back routes again within seconds; a healthy one keeps the interval."""

from datetime import timedelta

import pytest
from django.utils import timezone

from backends.models import Backend
from backends.probe import ProbeResult
from backends.services import backend_health_record, backends_claim_due, gateway_settings_update, probe_backoff

pytestmark = pytest.mark.django_db

INTERVAL = timedelta(seconds=60)
FAILED = ProbeResult("unhealthy", error="cannot connect: ConnectError")
HEALTHY = ProbeResult("healthy", latency_ms=3.0, http_status=200)


@pytest.fixture
def backend() -> Backend:
    gateway_settings_update(health_interval_ms=60_000)
    backend = Backend(name="b1", url="http://127.0.0.1:9/v1")
    backend.save()
    return backend


def next_check(backend: Backend):
    return Backend.objects.get(pk=backend.pk).next_check_at


def claimed_at(seconds_from_now: float) -> bool:
    return bool(backends_claim_due(now=timezone.now() + timedelta(seconds=seconds_from_now)))


def test_the_back_off_doubles_up_to_the_interval():
    delays = [probe_backoff(failures=n, interval=INTERVAL).total_seconds() for n in range(1, 9)]

    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert probe_backoff(failures=0, interval=INTERVAL) == INTERVAL
    assert probe_backoff(failures=10_000, interval=INTERVAL) == INTERVAL


def test_a_failing_backend_is_probed_again_after_one_then_two_seconds(backend):
    assert backends_claim_due() == [backend.pk]  # the claim pushes the next probe a whole interval out
    assert not claimed_at(30)

    backend_health_record(backend=backend, result=FAILED)

    assert not claimed_at(0.5)
    assert claimed_at(1.5)  # and this claim pushes it out again...
    backend_health_record(backend=Backend.objects.get(pk=backend.pk), result=FAILED)
    assert not claimed_at(1.5)
    assert claimed_at(2.5)  # ...until the second failure's back-off brings it in


def test_a_healthy_backend_keeps_the_interval(backend):
    backends_claim_due()
    backend_health_record(backend=backend, result=FAILED)
    backends_claim_due(now=timezone.now() + timedelta(seconds=1.5))

    backend_health_record(backend=Backend.objects.get(pk=backend.pk), result=HEALTHY)

    assert not claimed_at(30)
    assert claimed_at(62)
    assert Backend.objects.get(pk=backend.pk).consecutive_failures == 0


def test_the_back_off_never_pushes_a_due_probe_later(backend):
    soon = timezone.now() + timedelta(milliseconds=200)
    Backend.objects.filter(pk=backend.pk).update(next_check_at=soon, consecutive_failures=5)

    backend_health_record(backend=Backend.objects.get(pk=backend.pk), result=FAILED)  # back-off 32 s

    assert next_check(backend) == soon


def test_the_back_off_is_capped_by_a_short_health_interval(backend):
    gateway_settings_update(health_interval_ms=3_000)
    Backend.objects.filter(pk=backend.pk).update(consecutive_failures=9)

    backend_health_record(backend=Backend.objects.get(pk=backend.pk), result=FAILED)

    delay = (next_check(backend) - timezone.now()).total_seconds()
    assert 2 < delay <= 3


def test_the_healthy_probe_count_still_counts(backend):
    backend_health_record(backend=backend, result=HEALTHY)
    backend_health_record(backend=Backend.objects.get(pk=backend.pk), result=FAILED)
    backend_health_record(backend=Backend.objects.get(pk=backend.pk), result=HEALTHY)

    assert Backend.objects.get(pk=backend.pk).healthy_probe_count == 2
