"""The Traffic panel's numbers and the Backends panel's sparklines, from the minute roll-ups:
p50/p95 latency, time to first token, error rate and requests/s, for the whole gateway, one
backend or one model, over the last hour per minute and the last 24 h per 5 minutes; tokens
and cost per organisation and key from the usage roll-ups."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from traffic.buckets import LATENCY_BOUNDS, bucket_index
from traffic.models import TrafficMinute
from usage.models import UsageDay

pytestmark = pytest.mark.django_db
TRAFFIC = "/dashboard/api/traffic"


def minute(ago: int):
    return timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=ago)


def roll_up(*, ago: int, backend: str, model: str, latencies: list[float], ttfts: list[float] = (), errors: int = 0):
    """One minute row as the recorder writes it: counts plus latency and TTFT buckets."""
    fields = {
        "requests": len(latencies),
        "errors": errors,
        "latency_count": len(latencies),
        "latency_sum": sum(latencies),
    }
    for seconds in latencies:
        name = f"latency_b{bucket_index(LATENCY_BOUNDS, seconds):02d}"
        fields[name] = fields.get(name, 0) + 1
    for seconds in ttfts:
        name = f"ttft_b{bucket_index(LATENCY_BOUNDS, seconds):02d}"
        fields[name] = fields.get(name, 0) + 1
    fields["ttft_count"] = len(ttfts)
    return TrafficMinute.objects.create(bucket=minute(ago), backend=backend, model=model, **fields)


@pytest.fixture
def traffic():
    # Now: 18 fast requests and two slow ones on alpha; beta failed twice out of 4.
    roll_up(ago=0, backend="alpha", model="gpt-4o", latencies=[0.04] * 18 + [4.0] * 2, ttfts=[0.02] * 20)
    roll_up(ago=0, backend="beta", model="small", latencies=[0.2] * 4, errors=2)
    # Three hours ago, two minutes of the same 5-minute step.
    base = 180 + minute(0).minute % 5
    roll_up(ago=base, backend="alpha", model="gpt-4o", latencies=[0.04] * 3)
    roll_up(ago=base - 1, backend="alpha", model="gpt-4o", latencies=[0.04] * 2)


def test_the_pushed_state_has_p95_ttft_and_the_per_backend_and_per_model_tables(staff_client, two_backends, traffic):
    state = staff_client.get("/dashboard/api/state").json()

    series = state["traffic"]
    assert len(series["t"]) == 60 and series["requests"][-1] == 24
    assert series["requests_per_s"][-1] == 0.4  # 24 in a minute
    assert series["p95_ms"][-1] > series["p50_ms"][-1] and series["p95_ms"][-1] > 100
    assert series["ttft_p50_ms"][-1] is not None and series["ttft_p50_ms"][-1] <= 25
    assert series["error_rate"][-1] == round(2 / 24, 4)
    assert series["p50_ms"][0] is None  # an empty minute: no latency, not zero

    backends = {row["name"]: row for row in state["breakdown"]["backends"]}
    assert backends["alpha"]["requests"] == 20 and backends["alpha"]["error_rate"] == 0
    assert backends["alpha"]["p95_ms"] > 1000  # the two slow requests out of 20
    assert backends["beta"]["error_rate"] == 0.5 and backends["beta"]["ttft_p95_ms"] is None
    models = {row["name"]: row for row in state["breakdown"]["models"]}
    assert set(models) == {"gpt-4o", "small"} and models["small"]["requests"] == 4


def test_the_backends_sparkline_has_one_point_a_minute(staff_client, two_backends, traffic):
    rows = {b["name"]: b for b in staff_client.get("/dashboard/api/state").json()["backends"]}

    alpha = rows["alpha"]["minutes"]
    assert len(alpha["latency_ms"]) == 60
    assert alpha["latency_ms"][-1] == round((0.04 * 18 + 8.0) / 20 * 1000, 1)
    assert alpha["latency_ms"][0] is None and alpha["requests"][-1] == 20
    assert rows["beta"]["minutes"]["errors"][-1] == 2


def test_the_last_24_hours_in_5_minute_points(staff_client, traffic):
    whole = staff_client.get(TRAFFIC, {"range": "24h"}).json()

    assert len(whole["t"]) == 288 and whole["step_minutes"] == 5
    assert whole["t"][1] - whole["t"][0] == 300
    assert sum(whole["requests"]) == 29
    assert 5 in whole["requests"]  # the two minutes three hours ago, folded into one point
    assert whole["requests"][-1] == 24


def test_one_backend_or_one_model(staff_client, traffic):
    beta = staff_client.get(TRAFFIC, {"backend": "beta"}).json()
    gpt = staff_client.get(TRAFFIC, {"model": "gpt-4o", "range": "24h"}).json()

    assert beta["backend"] == "beta" and beta["requests"][-1] == 4 and beta["error_rate"][-1] == 0.5
    assert gpt["model"] == "gpt-4o" and sum(gpt["requests"]) == 25


@pytest.mark.parametrize(
    "query", [{"range": "7d"}, {"backend": "a", "model": "b"}, {"backend": "x" * 65}], ids=["range", "both", "long"]
)
def test_bad_queries_are_400_in_openais_shape(staff_client, query):
    answer = staff_client.get(TRAFFIC, query)

    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_value"


def test_the_traffic_endpoint_is_for_staff_only():
    answer = Client().get(TRAFFIC)

    assert answer.status_code == 403 and answer.json()["error"]["code"] == "staff_login_required"


def test_tokens_and_cost_per_organisation_and_key(staff_client):
    today = timezone.now().date()
    UsageDay.objects.create(
        day=today, organisation="acme", key_ref=7, key_prefix="eld_abcd", model="gpt-4o", backend="alpha",
        requests=3, input_tokens=30, output_tokens=9, cost_nanos=1_500_000,
    )  # fmt: skip
    UsageDay.objects.create(
        day=today, organisation="acme", key_ref=0, model="gpt-4o", backend="alpha", requests=1, input_tokens=5,
    )  # fmt: skip

    usage = staff_client.get("/dashboard/api/state").json()["usage"]

    today_figures = usage["today"]
    assert [o["organisation"] for o in today_figures["organisations"]] == ["acme"]
    acme = today_figures["organisations"][0]
    assert (acme["requests"], acme["input_tokens"], acme["cost_usd"]) == (4, 35, 0.0015)
    keys = {(k["key"] or {}).get("prefix"): k for k in today_figures["keys"]}
    assert keys["eld_abcd"]["requests"] == 3 and keys[None]["requests"] == 1
    assert usage["month"]["totals"]["requests"] == 4


def test_uptime_and_the_probe_bar_come_from_the_probe_history(staff_client, two_backends):
    from backends.models import Backend, HealthStatus
    from backends.probe import ProbeResult
    from backends.services import backend_health_record
    from traffic.services import probe_history_add, traffic_retention_enforce

    alpha = Backend.objects.get(name="alpha")
    # Three probes now (one failed), through the service every probe goes through.
    for status in (HealthStatus.HEALTHY, HealthStatus.UNHEALTHY, HealthStatus.HEALTHY):
        backend_health_record(backend=alpha, result=ProbeResult(status, latency_ms=5.0, error="boom"))
    # One healthy probe 10 hours ago, one 30 hours ago (outside the 24 h, and past retention later).
    now = timezone.now()
    probe_history_add(backend="alpha", healthy=True, latency_ms=4.0, now=now - timedelta(hours=10))
    probe_history_add(backend="alpha", healthy=True, latency_ms=4.0, now=now - timedelta(hours=30))

    rows = {b["name"]: b for b in staff_client.get("/dashboard/api/state").json()["backends"]}

    probes = rows["alpha"]["probes"]
    assert probes["probes_24h"] == 4 and probes["uptime_24h"] == 0.75
    assert len(probes["cells"]) == 48 and probes["cell_minutes"] == 30
    assert probes["cells"][-1] == round(2 / 3, 3)  # the cell of now: 2 of 3 healthy
    assert probes["cells"].count(None) == 46  # no probe at all in those
    assert rows["beta"]["probes"] is None  # never probed: the page says "no probes yet"

    traffic_retention_enforce(now=now + timedelta(hours=20))  # 48 h retention: the 30-hour-old one goes
    from traffic.models import ProbeMinute

    assert ProbeMinute.objects.count() == 2
