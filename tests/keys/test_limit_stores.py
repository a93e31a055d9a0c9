"""The two limit stores side by side, driven directly (no gateway): the same answers from the
in-memory counters and from the Redis scripts."""

from __future__ import annotations

import asyncio

import pytest

from gateway.config import GatewayConfig
from gateway.context import RequestContext, Usage
from gateway.limits import duration_text, limiter_for, period_of
from orgs.access import KeyRecord, LimitSpec, OrgRecord
from tests.keys.conftest import REDIS_URL


def make_limiter(store: str, request):
    if store == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        return limiter_for(GatewayConfig(limits_redis_url=REDIS_URL, limits_redis_prefix=prefix))
    return limiter_for(GatewayConfig())


def ctx(n: int) -> RequestContext:
    return RequestContext(request_id=f"req-{n}", dialect="openai.chat")


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_key_and_organisation_limits_both_apply_and_budgets_report_what_is_left(store, request):
    limiter = make_limiter(store, request)
    key = KeyRecord(id=7, organisation="acme", name="k", prefix="x", limits=LimitSpec(rpm=5, budget_usd=1.0))
    org = OrgRecord(id=2, slug="acme", limits=LimitSpec(rpm=3, budget_usd=10.0, budget_period="day"))

    async def scenario():
        scopes = limiter.scopes_for(key, org)
        outcomes = []
        for n in range(4):
            context = ctx(n)
            refused, headers = await limiter.acquire(context, scopes, 10)
            outcomes.append((refused.code if refused else "ok", dict(headers)[b"x-ratelimit-remaining-requests"]))
            context.usage, context.cost_usd, context.first_upstream_byte = Usage(5, 5), 0.25, 1.0
            await limiter.release_before_end(context)
        budgets = await limiter.budgets(key, org)
        await limiter.aclose()
        return outcomes, budgets

    outcomes, budgets = asyncio.run(scenario())
    # The organisation's 3 RPM is the tighter limit, and its headers are the ones sent.
    assert outcomes == [("ok", b"2"), ("ok", b"1"), ("ok", b"0"), ("rate_limit_exceeded", b"0")]
    assert [(b["scope"], b["budget_usd"], b["period"], b["spent_usd"], b["remaining_usd"]) for b in budgets] == [
        ("key", 1.0, "month", 0.75, 0.25),
        ("organisation", 10.0, "day", 0.75, 9.25),
    ]


def test_reset_durations_and_budget_periods_in_openais_format():
    assert [duration_text(ms) for ms in (0, 20, 999, 1000, 6500, 59_998, 60_000, 360_000, 3_723_000)] == [
        "0ms", "20ms", "999ms", "1s", "6.5s", "59.998s", "1m0s", "6m0s", "1h2m3s",
    ]  # fmt: skip
    # 2026-12-31 23:59:59 UTC: the day ends at midnight, the month rolls into the next year.
    assert period_of("day", 1798761599) == ("d20261231", 1798761600000)
    assert period_of("month", 1798761599) == ("m202612", 1798761600000)


def test_redis_urls_the_limiter_understands():
    from gateway.limits_resp import RespClient

    tcp = RespClient("redis://user:p%40ss@cache.internal:6380/5", timeout=1, scripts={})
    assert (tcp.host, tcp.port, tcp.username, tcp.password, tcp.db, tcp.tls, tcp.socket_path) == (
        "cache.internal", 6380, "user", "p@ss", 5, False, ""
    )  # fmt: skip
    assert RespClient("rediss://cache.internal", timeout=1, scripts={}).tls is True
    unix = RespClient("unix:///run/redis/redis.sock?db=3", timeout=1, scripts={})
    assert (unix.socket_path, unix.db) == ("/run/redis/redis.sock", 3)
    with pytest.raises(ValueError, match="unsupported Redis URL scheme"):
        RespClient("memcached://x", timeout=1, scripts={})
