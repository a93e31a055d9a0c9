"""The routing-decisions panel: a real eldric-cloudd's websocket carries the last requests it
answered (model → backend, status, latency, failovers with their reason, request id), never
the prompt and never a key; the ring is bounded."""

from __future__ import annotations

import json
import time

from openai import OpenAI
from websockets.sync.client import connect

from gateway.context import Attempt, RequestContext
from tests.cli_process import GatewayProcess
from tests.dashboard.test_process import create_superuser, log_in
from tests.fakes.server import FakeProvider, openai_models
from tests.traffic.upstream import chat_upstream
from traffic.decisions import DecisionRing

PROMPT_SECRET = "PROMPT-CONTENT-never-shown-4242"
KEY = "sk-beta-RAWSECRET-55556666"


def finished(request_id: str, **fields) -> RequestContext:
    ctx = RequestContext(request_id=request_id, dialect="openai.chat", **fields)
    ctx.done = ctx.received + 0.25
    return ctx


def test_the_ring_keeps_the_newest_and_reads_newest_first():
    ring = DecisionRing(size=3)
    for number in range(5):
        ring.request_finished(finished(f"req_{number}", model="gpt-4o", backend="alpha", status=200))
    ring.request_finished(RequestContext(request_id="req_health", dialect="health"))  # routes nowhere

    rows = ring.rows()

    assert [row["request_id"] for row in rows] == ["req_4", "req_3", "req_2"]
    assert rows[0]["latency_ms"] == 250.0 and rows[0]["failovers"] == [] and rows[0]["final"] is None


def test_failovers_carry_their_reason_and_a_failed_last_attempt_is_shown():
    ctx = finished("req_f", model="m" * 500, backend="beta", status=502)
    ctx.attempts = [
        Attempt("alpha", 0.0, 0.1, outcome="connect_error", reason="connection refused"),
        Attempt("beta", 0.1, 0.2, outcome="upstream_error", status=502, reason="beta answered 502"),
    ]
    ring = DecisionRing(size=10)
    ring.request_finished(ctx)

    (row,) = ring.rows()

    assert row["failovers"] == [
        {"backend": "alpha", "outcome": "connect_error", "status": None, "reason": "connection refused"}
    ]
    assert row["final"]["outcome"] == "upstream_error" and row["final"]["status"] == 502
    assert len(row["model"]) == 120  # a client's string, cut for the page


def test_a_real_gateway_pushes_its_decisions_over_the_websocket(data_dir):
    alpha = FakeProvider(name="alpha").start()
    beta = FakeProvider(name="beta").start()
    for fake in (alpha, beta):
        fake.on("GET", "/v1/models", openai_models("gpt-4o")).on(
            "POST", "/v1/chat/completions", chat_upstream(fake.name)
        )
    directory = data_dir()
    create_superuser(directory)
    process = GatewayProcess(
        "--backends",
        f"alpha:{alpha.url}/v1:sk-alpha-RAW-1,beta:{beta.url}/v1:{KEY}",
        data_dir=directory,
        env={"ELDRIC_DASHBOARD_PUSH_SECONDS": "0.2", "REDIS_URL": ""},
    ).start()
    try:
        client = OpenAI(base_url=process.url + "/v1", api_key="unused", max_retries=0)
        plain = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"tokens:5 {PROMPT_SECRET}"}]
        )
        failed_over = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"fail:alpha:503 {PROMPT_SECRET}"}]
        )
        ids = {plain.headers["x-request-id"], failed_over.headers["x-request-id"]}

        with process.client() as http:
            log_in(http)
            cookie = f"sessionid={http.cookies['sessionid']}"
            # The JSON endpoint has no decisions: they live in the websocket's process.
            assert http.get("/dashboard/api/state").json()["decisions"] is None

        ws_url = process.url.replace("http://", "ws://") + "/dashboard/ws/"
        with connect(ws_url, additional_headers={"Cookie": cookie, "Origin": process.url}, open_timeout=10) as socket:
            deadline = time.monotonic() + 15
            while True:
                text = socket.recv(timeout=10)
                decisions = {row["request_id"]: row for row in json.loads(text)["state"]["decisions"] or []}
                if ids <= decisions.keys() or time.monotonic() > deadline:
                    break
        assert ids <= decisions.keys()
        assert PROMPT_SECRET not in text and KEY not in text and "sk-alpha-RAW-1" not in text

        first = decisions[plain.headers["x-request-id"]]
        assert (first["model"], first["backend"], first["status"], first["failovers"]) == ("gpt-4o", "alpha", 200, [])
        assert first["latency_ms"] > 0
        second = decisions[failed_over.headers["x-request-id"]]
        assert (second["backend"], second["status"]) == ("beta", 200)
        (failover,) = second["failovers"]
        assert failover["backend"] == "alpha" and failover["status"] == 503 and failover["outcome"] == "upstream_error"
        assert failover["reason"]
        # Newest first.
        order = [row["request_id"] for row in json.loads(text)["state"]["decisions"]]
        assert order.index(second["request_id"]) < order.index(first["request_id"])
    finally:
        process.stop()
        alpha.stop()
        beta.stop()
