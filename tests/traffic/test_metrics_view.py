"""``GET /metrics``: who may read it, and what it says."""

from __future__ import annotations

import pytest

from tests.traffic.conftest import finished, sample, scrape
from traffic.services import probe_record

pytestmark = pytest.mark.django_db
TOKEN = "eldadm_metrics-test-token-0123456789"
ELSEWHERE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def admin_token(settings):
    settings.ELDRIC_ADMIN_TOKEN = TOKEN
    return TOKEN


def test_a_loopback_scrape_reads_requests_and_probes(client, recorder):
    recorder.request_finished(finished(status=503, error_code="no_healthy_backend"))
    recorder.flush()
    probe_record(backend="alpha", status="unhealthy", latency_ms=None)
    probe_record(backend="beta", status="healthy", latency_ms=12.5)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = scrape(response.content.decode())
    assert sample(samples, "eldric_requests_total", backend="alpha", model="gpt-4o", status_class="5xx") == 1
    labels = {"backend": "alpha", "model": "gpt-4o", "status_class": "5xx", "code": "no_healthy_backend"}
    assert sample(samples, "eldric_errors_total", **labels) == 1
    assert sample(samples, "eldric_backend_health_status", backend="alpha", status="unhealthy") == 1
    assert sample(samples, "eldric_backend_health_status", backend="alpha", status="healthy") == 0
    assert sample(samples, "eldric_backend_health_status", backend="beta", status="healthy") == 1
    assert sample(samples, "eldric_backend_probe_latency_seconds", backend="beta") == pytest.approx(0.0125)
    assert sample(samples, "eldric_backend_probes_total", backend="alpha", status="unhealthy") == 1


def test_from_elsewhere_it_needs_the_admin_token(client, admin_token, metrics_dir):
    refused = client.get("/metrics", **ELSEWHERE)
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer eldadm_wrong", **ELSEWHERE)
    allowed = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {admin_token}", **ELSEWHERE)

    assert refused.status_code == 401 and wrong.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert allowed.status_code == 200


def test_eldric_metrics_public_opens_it_to_everyone(client, settings, metrics_dir):
    settings.ELDRIC_METRICS_PUBLIC = True
    assert client.get("/metrics", **ELSEWHERE).status_code == 200


def test_loopback_access_can_be_turned_off_behind_a_local_proxy(client, settings, admin_token, metrics_dir):
    settings.ELDRIC_METRICS_LOOPBACK_OPEN = False
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {admin_token}").status_code == 200


def test_anything_but_get_is_refused_in_openai_shape(client, metrics_dir):
    response = client.post("/metrics", data=b"{}", content_type="application/json")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_a_reset_at_start_forgets_earlier_runs_but_not_this_process(client, metrics_dir):
    import os

    from traffic.services import metrics_dir_reset

    (metrics_dir / "counter_999999.db").write_bytes(b"stale")
    (metrics_dir / "gauge_livemax_999999.db").write_bytes(b"stale")
    probe_record(backend="alpha", status="healthy", latency_ms=3.0)
    metrics_dir_reset()

    assert all(path.name.endswith(f"_{os.getpid()}.db") for path in metrics_dir.iterdir())
    samples = scrape(client.get("/metrics").content.decode())
    assert sample(samples, "eldric_backend_probes_total", backend="alpha", status="healthy") == 1


def test_a_corrupted_metrics_file_gets_a_clear_503_not_a_traceback(client, metrics_dir):
    (metrics_dir / "counter_999999.db").write_bytes(b"\x10\x00\x00\x00garbage-garbage-garbage")

    response = client.get("/metrics")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "metrics_unavailable"
