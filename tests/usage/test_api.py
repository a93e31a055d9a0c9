"""GET /api/v1/usage: filters, group_by, totals and unpriced flags; bad input is a 400; and
the report GET /v1/usage builds for a client key."""

from __future__ import annotations

import datetime
from datetime import UTC

import pytest

from gateway.context import Principal, Usage
from tests.usage.conftest import finished

pytestmark = pytest.mark.django_db(transaction=True)


def at(day: str) -> float:
    return datetime.datetime.fromisoformat(day + "T12:00:00").replace(tzinfo=UTC).timestamp()


def write(*contexts) -> None:
    from usage.rows import row_from_context
    from usage.services import usage_batch_write

    usage_batch_write(rows=[row_from_context(ctx, "test") for ctx in contexts])


@pytest.fixture
def keys():
    from orgs.models import ClientKey, Organisation

    acme = Organisation.objects.create(slug="acme", name="Acme")
    ci = ClientKey.objects.create(organisation=acme, name="ci", prefix="CiCi1234", key_hash="a" * 64)
    web = ClientKey.objects.create(organisation=acme, name="web", prefix="WebW5678", key_hash="b" * 64)
    return ci, web


@pytest.fixture
def usage(keys):
    ci, web = keys
    as_ci = Principal("client_key", organisation="acme", key_id=str(ci.id))
    as_web = Principal("client_key", organisation="acme", key_id=str(web.id))
    write(
        finished(
            model="gpt-a", backend="alpha", usage=Usage(100, 10), cost=0.001, principal=as_ci, at=at("2026-11-01")
        ),
        finished(model="gpt-a", backend="beta", usage=Usage(200, 20), cost=0.002, principal=as_ci, at=at("2026-11-02")),
        finished(
            model="gpt-b", backend="alpha", usage=Usage(300, 30), cost=0.003, principal=as_web, at=at("2026-11-02")
        ),
        finished(model="odd", backend="alpha", usage=Usage(5, 5), cost=None, principal=as_web, at=at("2026-11-03")),
        finished(model="gpt-a", backend="alpha", usage=Usage(1, 1), cost=0.0001, at=at("2026-11-03")),
        finished(model="gpt-a", backend="", status=502, at=at("2026-11-03")),
    )
    return ci, web


def test_totals_over_everything_flag_the_unpriced_requests(api, usage):
    body = api.get("/api/v1/usage").json()
    totals = body["totals"]
    assert (totals["requests"], totals["errors"], totals["input_tokens"], totals["output_tokens"]) == (6, 1, 606, 66)
    assert totals["cost_usd"] == pytest.approx(0.0061)
    assert totals["unpriced"] is True and totals["unpriced_requests"] == 1
    assert "data" not in body


def test_filters_narrow_by_organisation_key_model_backend_and_dates(api, usage):
    ci, _ = usage

    def totals(query):
        response = api.get("/api/v1/usage?" + query)
        assert response.status_code == 200, response.json()
        return response.json()["totals"]

    assert totals("org=acme")["requests"] == 4
    assert totals("org=default")["requests"] == 2
    assert totals(f"key={ci.id}")["input_tokens"] == 300
    assert totals("key=eld-WebW5678…")["input_tokens"] == 305  # by prefix, as the admin shows it
    assert totals("model=gpt-a")["requests"] == 4
    assert totals("backend=beta")["cost_usd"] == pytest.approx(0.002)
    assert totals("from=2026-11-02&to=2026-11-02")["requests"] == 2
    assert totals("from=2026-11-03")["unpriced"] is True
    assert totals("to=2026-11-02")["unpriced"] is False
    assert totals("org=nobody")["requests"] == 0


def test_group_by_each_dimension(api, usage):

    def groups(dims, query=""):
        return api.get(f"/api/v1/usage?group_by={dims}{query}").json()["data"]

    assert [(g["day"], g["requests"]) for g in groups("day")] == [
        ("2026-11-01", 1),
        ("2026-11-02", 2),
        ("2026-11-03", 3),
    ]
    by_model = {g["model"]: g for g in groups("model")}
    assert by_model["odd"]["unpriced"] is True and by_model["gpt-a"]["unpriced"] is False
    assert by_model["gpt-b"]["cost_usd"] == pytest.approx(0.003)
    assert {g["backend"]: g["requests"] for g in groups("backend")} == {"": 1, "alpha": 4, "beta": 1}
    assert {g["organisation"]: g["requests"] for g in groups("organisation")} == {"acme": 4, "default": 2}
    by_key = groups("key", "&org=acme")
    assert [(g["key"]["name"], g["key"]["prefix"], g["input_tokens"]) for g in by_key] == [
        ("ci", "CiCi1234", 300),
        ("web", "WebW5678", 305),
    ]
    assert groups("key", "&org=default")[0]["key"] is None  # master key / no key
    pairs = groups("day,model", "&org=acme")
    assert [(g["day"], g["model"]) for g in pairs] == [
        ("2026-11-01", "gpt-a"),
        ("2026-11-02", "gpt-a"),
        ("2026-11-02", "gpt-b"),
        ("2026-11-03", "odd"),
    ]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-11-05&to=2026-11-01", "from"),
        ("group_by=colour", "group_by"),
        ("group_by=day,day", "group_by"),
        ("key=not-a-prefix!", "key"),
        ("key=99999999999999999999999", "key"),
        ("model=" + "m" * 300, "model"),
        ("month=11", "month"),
        ("org=a&org=b", "org"),
    ],
)
def test_bad_input_is_a_400_in_openai_shape(api, query, param):
    response = api.get("/api/v1/usage?" + query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["message"]


def test_the_usage_api_needs_the_admin_token(client, admin_token):
    assert client.get("/api/v1/usage").status_code == 401
    assert client.get("/api/v1/usage", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_a_client_key_reads_its_own_usage_budget_and_what_remains(keys):
    from gateway.usage_views import _report
    from orgs.access import AccessSnapshot, KeyRecord, LimitSpec, OrgRecord

    ci, web = keys
    today = datetime.datetime.now(UTC).date()
    now = datetime.datetime.now(UTC).timestamp()
    as_ci = Principal("client_key", organisation="acme", key_id=str(ci.id), name="ci")
    as_web = Principal("client_key", organisation="acme", key_id=str(web.id))
    write(
        finished(model="gpt-a", usage=Usage(10, 10), cost=0.25, principal=as_ci, at=now),
        finished(model="odd", usage=Usage(10, 10), cost=None, principal=as_ci, at=now),
        finished(model="gpt-a", usage=Usage(10, 10), cost=1.0, principal=as_web, at=now),
        # Last period's spend does not count against a daily budget.
        finished(model="gpt-a", usage=Usage(10, 10), cost=5.0, principal=as_ci, at=now - 3 * 86400),
    )
    access = AccessSnapshot(
        version=1,
        organisations={"acme": OrgRecord(id=1, slug="acme", limits=LimitSpec(budget_usd=100.0, budget_period="month"))},
        keys={
            "h" * 64: KeyRecord(
                id=ci.id,
                organisation="acme",
                name="ci",
                prefix="CiCi1234",
                limits=LimitSpec(budget_usd=2.0, budget_period="day"),
            )
        },
    )
    # The handler passes the key record authentication found.
    report = _report(as_ci, access, today, access.keys["h" * 64])

    assert report["key"]["name"] == "ci" and report["key"]["prefix"] == "CiCi1234"
    assert report["key"]["budget_usd"] == 2.0 and report["key"]["period"] == "day"
    assert report["key"]["spent_usd"] == pytest.approx(0.25)
    assert report["key"]["remaining_usd"] == pytest.approx(1.75)
    assert report["key"]["unpriced_requests"] == 1
    assert report["usage"]["requests"] == 2 and report["usage"]["unpriced"] is True
    assert report["period"] == {"kind": "day", "start": today.isoformat(), "end": today.isoformat()}
    assert report["all_time"]["cost_usd"] == pytest.approx(5.25)
    assert report["organisation"]["budget_usd"] == 100.0
    month_spend = 1.25 + (5.0 if (today - datetime.timedelta(days=3)).month == today.month else 0.0)
    assert report["organisation"]["spent_usd"] == pytest.approx(month_spend)
    # Another key's usage is not in this key's report.
    assert {m["model"] for m in report["by_model"]} == {"gpt-a", "odd"}
