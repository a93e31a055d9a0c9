"""Synthetic finished requests, an isolated metrics directory, and real Postgres."""

from __future__ import annotations

import time

import pytest

from gateway.context import Attempt, RequestContext, Usage
from tests.e2e.conftest import postgres_url  # noqa: F401 - a fixture, shared

T0 = 1000.0  # monotonic origin of every synthetic request


def finished(
    *,
    backend: str = "alpha",
    model: str = "gpt-4o",
    model_known: bool = True,
    status: int = 200,
    latency: float | None = 0.2,
    ttfb: float | None = 0.05,
    stream: bool = False,
    usage: Usage | None = None,
    failed: tuple[tuple[str, str, int | None], ...] = (),
    error_code: str = "",
    disconnected: bool = False,
    at: float | None = None,
) -> RequestContext:
    """A finished request as the gateway hands it over. ``failed`` lists the attempts that
    handed over before the last one, as (backend, outcome, status)."""
    ctx = RequestContext(request_id="req_test", dialect="openai.chat", received=T0)
    ctx.received_at = time.time() if at is None else at
    ctx.model = model
    ctx.model_known = model_known
    ctx.stream = stream
    ctx.usage = usage
    ctx.status = status
    ctx.error_code = error_code
    ctx.client_disconnected = disconnected
    ctx.backend = backend
    for name, outcome, attempt_status in failed:
        ctx.attempts.append(Attempt(name, started=T0, ended=T0 + 0.01, outcome=outcome, status=attempt_status))
    if backend:
        ctx.attempts.append(
            Attempt(backend, started=T0 + 0.01, ended=T0 + (latency or 0.01), outcome="ok", status=status)
        )
    if ttfb is not None:
        ctx.first_client_byte = T0 + ttfb
    if latency is not None:
        ctx.done = T0 + latency
    return ctx


@pytest.fixture
def metrics_dir(tmp_path, monkeypatch):
    """Metrics files of this test alone: prometheus-client opens its files on first use
    per process, so they are closed before and after."""
    from django.apps import apps
    from prometheus_client import values

    path = tmp_path / "prometheus"
    path.mkdir()
    traffic = apps.get_app_config("traffic")
    values.ValueClass.close_all_files()
    traffic._probe_metrics = None
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    yield path
    values.ValueClass.close_all_files()
    traffic._probe_metrics = None


@pytest.fixture
def recorder(metrics_dir):
    from traffic.recorder import TrafficRecorder

    states: dict[str, dict] = {}
    made = TrafficRecorder(instance="test", flush_seconds=60, live_state=lambda: states)
    made.states = states  # the test sets what live_state() answers
    return made


def scrape(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text -> {(sample name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))
