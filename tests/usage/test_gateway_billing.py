"""A mixed run through a real gateway with a real usage recorder: the usage records and the
daily roll-ups equal what the clients were billed (the usage in their answers × the prices of
the backend that answered), through streams, errors and failovers."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from gateway.config import GatewayConfig
from tests.conftest import route_for
from tests.gateway_server import GatewayServer
from tests.traffic.upstream import COMPLETION_TOKENS, chat_upstream
from tests.usage.conftest import price

pytestmark = pytest.mark.django_db(transaction=True)

MASTER = "mk-usage-test-master-key"
# USD per million tokens: (input, output).
ANY_BACKEND = (2.0, 8.0)
ON_SECONDARY = (3.0, 12.0)
GLOB = (1.0, 4.0)


def wait_until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def billing(fake_provider):
    from orgs.access import AccessSnapshot
    from usage.recorder import UsageRecorder
    from usage.selectors import price_book_build

    primary, secondary = fake_provider("primary"), fake_provider("secondary")
    for fake in (primary, secondary):
        fake.on("POST", "/v1/chat/completions", chat_upstream(fake.name))
    price("", "gpt-test", input="2", output="8")
    price("secondary", "gpt-test", input="3", output="12")
    price("", "gpt-glob-*", input="1", output="4")

    server = GatewayServer(GatewayConfig(master_key=MASTER))
    recorder = UsageRecorder(instance="billing-test", flush_seconds=0.2)
    server.gateway.add_recorder(recorder)
    server.gateway.snapshots.install_access(AccessSnapshot(), price_book_build())
    models = ["gpt-test", "gpt-glob-a", "mystery-model"]
    server.start()
    server.route((route_for(primary, priority=1), models), (route_for(secondary, priority=2), models))
    server.usage_recorder = recorder
    yield server
    server.stop()


def cost(usage, rates) -> float:
    return (usage.prompt_tokens * rates[0] + usage.completion_tokens * rates[1]) / 1e6


def test_records_and_rollups_equal_what_the_clients_were_billed(billing):
    from usage.models import UsageDay, UsageRecord

    client = openai.OpenAI(base_url=billing.url + "/v1", api_key=MASTER, max_retries=0)
    expected: list[tuple[str, float | None, int, int]] = []  # (model, cost, prompt, completion)

    def chat(model, content, rates, **kwargs):
        answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}], **kwargs)
        expected.append((model, None if rates is None else cost(answer.usage, rates), *_tokens(answer.usage)))

    for n in (11, 5, 130, 1, 42):
        chat("gpt-test", f"tokens:{n}", ANY_BACKEND)
    for n in (9, 77):  # the primary fails: answered by the secondary, at the secondary's price
        chat("gpt-test", f"tokens:{n} fail:primary:500", ON_SECONDARY)
    chat("gpt-glob-a", "tokens:300", GLOB)
    chat("mystery-model", "tokens:12", None)  # no price: flagged, never $0
    for n in (8, 21):  # streams, with the usage the client asked for in the last event
        stream = client.chat.completions.create(
            model="gpt-test",
            messages=[{"role": "user", "content": f"tokens:{n}"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        usage = [chunk.usage for chunk in stream if chunk.usage][-1]
        expected.append(("gpt-test", cost(usage, ANY_BACKEND), *_tokens(usage)))
    # A stream that did not ask for usage: the gateway still counts it (3 completion tokens).
    for _ in client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "tokens:17"}], stream=True
    ):
        pass
    expected.append(("gpt-test", (17 * 2 + COMPLETION_TOKENS * 8) / 1e6, 17, COMPLETION_TOKENS))
    # Both backends fail: an error, nothing used, nothing owed.
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "fail:primary:500 fail:secondary:500"}]
        )
    expected.append(("gpt-test", 0.0, 0, 0))
    # A request the gateway itself refuses.
    with httpx.Client(base_url=billing.url, headers={"Authorization": f"Bearer {MASTER}"}) as raw:
        assert raw.post("/v1/chat/completions", content=b"{not json").status_code == 400
    expected.append(("", 0.0, 0, 0))

    wait_until(lambda: billing.usage_recorder.written >= len(expected))
    records = list(UsageRecord.objects.order_by("time", "id"))
    assert len(records) == len(expected)
    # What each request was charged (ctx.cost_usd: what budgets are charged from) is what was recorded.
    charged = sorted(round(c.cost_usd * 1e9) for c in billing.recorder.finished if c.cost_usd is not None)
    assert charged == sorted(r.cost_nanos for r in records if r.cost_nanos is not None and r.input_tokens)

    billed = sum(c for _, c, *_ in expected if c is not None)
    recorded = sum(r.cost_nanos or 0 for r in records)
    assert abs(recorded / 1e9 - billed) < 1e-9 * len(records)
    assert sum(r.input_tokens for r in records) == sum(p for *_, p, _ in expected)
    assert sum(r.output_tokens for r in records) == sum(c for *_, c in expected)
    assert [r.model for r in records if r.unpriced] == ["mystery-model"]
    assert {r.backend for r in records if r.cost_nanos and r.input_tokens in (9, 77)} == {"secondary"}
    assert sum(1 for r in records if r.status >= 400) == 2

    days = list(UsageDay.objects.all())
    assert sum(d.cost_nanos for d in days) == recorded  # exactly: integers
    assert sum(d.requests for d in days) == len(records)
    assert sum(d.errors for d in days) == 2
    assert sum(d.input_tokens for d in days) == sum(r.input_tokens for r in records)
    assert sum(d.output_tokens for d in days) == sum(r.output_tokens for r in records)
    assert sum(d.unpriced_requests for d in days) == 1

    # The master key reads the default organisation's usage at /v1/usage.
    with httpx.Client(base_url=billing.url, headers={"Authorization": f"Bearer {MASTER}"}) as raw:
        report = raw.get("/v1/usage").json()
    assert report["usage"]["requests"] == len(records)
    assert report["usage"]["cost_usd"] == pytest.approx(recorded / 1e9, abs=1e-9)
    assert report["usage"]["unpriced"] is True and report["usage"]["unpriced_requests"] == 1
    assert {m["model"]: m["unpriced"] for m in report["by_model"]}["mystery-model"] is True
    assert report["organisation"]["slug"] == "default" and report["organisation"]["remaining_usd"] is None


def _tokens(usage) -> tuple[int, int]:
    return usage.prompt_tokens, usage.completion_tokens


def test_shutdown_writes_what_was_still_queued(fake_provider):
    from orgs.access import AccessSnapshot
    from usage.models import UsageRecord
    from usage.recorder import UsageRecorder
    from usage.selectors import price_book_build

    fake = fake_provider("primary")
    fake.on("POST", "/v1/chat/completions", chat_upstream("primary"))
    price("", "gpt-test", input="2", output="8")
    server = GatewayServer(GatewayConfig())
    # A flush interval longer than the test: only the shutdown can write these.
    recorder = UsageRecorder(instance="stop-test", flush_seconds=3600)
    server.gateway.add_recorder(recorder)
    server.gateway.snapshots.install_access(AccessSnapshot(), price_book_build())
    server.start()
    server.route((route_for(fake), ["gpt-test"]))
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    for n in range(1, 8):
        client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": f"tokens:{n}"}])
    server.recorder.wait_for(7)
    assert UsageRecord.objects.count() == 0
    server.stop()

    assert UsageRecord.objects.count() == 7
    assert sum(r.input_tokens for r in UsageRecord.objects.all()) == sum(range(1, 8))


def test_v1_usage_without_a_key_is_refused_when_the_gateway_is_open(gateway):
    with gateway.client() as raw:
        answer = raw.get("/v1/usage")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "usage_needs_key"


def test_a_client_key_reads_its_own_usage_and_budget_at_v1_usage(billing):
    from orgs.access import access_snapshot_build
    from orgs.keys import key_create
    from usage.selectors import price_book_build

    mine = key_create(name="mine", budget_usd=1, budget_period="day")
    other = key_create(name="other")
    billing.gateway.snapshots.install_access(access_snapshot_build(), price_book_build())

    def ask(key: str, n: int) -> None:
        client = openai.OpenAI(base_url=billing.url + "/v1", api_key=key, max_retries=0)
        client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": f"tokens:{n}"}])

    for n in (1000, 3000):
        ask(mine.key, n)
    ask(other.key, 500_000)
    wait_until(lambda: billing.usage_recorder.written >= 3)

    with httpx.Client(base_url=billing.url, headers={"Authorization": f"Bearer {mine.key}"}) as raw:
        report = raw.get("/v1/usage").json()
    spent = ((1000 + 3000) * 2 + 2 * COMPLETION_TOKENS * 8) / 1e6
    assert report["key"]["name"] == "mine" and report["key"]["prefix"] == mine.record.prefix
    assert report["key"]["budget_usd"] == 1.0 and report["key"]["period"] == "day"
    assert report["key"]["spent_usd"] == pytest.approx(spent, abs=1e-9)
    assert report["key"]["remaining_usd"] == pytest.approx(1.0 - spent, abs=1e-9)
    assert report["usage"]["requests"] == 2 and report["usage"]["input_tokens"] == 4000
    # The organisation's spend includes the other key's; the key's own figures do not.
    assert report["organisation"]["spent_usd"] == pytest.approx(spent + (500_000 * 2 + 3 * 8) / 1e6, abs=1e-9)
    assert mine.key not in raw_text(report)


def raw_text(report) -> str:
    import json

    return json.dumps(report)
