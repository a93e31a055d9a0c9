"""Accounting on the real ``eldric-cloudd``: ``/metrics`` with the gateway and the embedded
Celery worker both reporting, and roll-ups that add up to exactly what the clients saw."""

from __future__ import annotations

import json
import random
import re
import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.cli_process import GatewayProcess
from tests.fakes.server import openai_models
from tests.traffic.conftest import scrape
from tests.traffic.upstream import COMPLETION_TOKENS, chat_upstream

TOKEN = "eldadm_process-test-token-0123456789"


def start(tmp_path, *backends: str, worker: bool, **env: str) -> GatewayProcess:
    return GatewayProcess(
        "--health-interval",
        "1000",
        "--backends",
        ",".join(backends),
        data_dir=tmp_path,
        worker=worker,
        env={
            "DATABASE_URL": f"sqlite:///{tmp_path / 'eldric.sqlite3'}",
            "REDIS_URL": "",
            "ELDRIC_ADMIN_TOKEN": TOKEN,
            "ELDRIC_MASTER_KEY": "",
            "ELDRIC_TRAFFIC_FLUSH_SECONDS": "0.2",
            # This run's metrics alone: the test process has a directory of its own.
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
            **env,
        },
    ).start()


def metric_total(samples: dict, name: str, **labels) -> float:
    return sum(
        value for (sample, have), value in samples.items() if sample == name and set(labels.items()) <= set(have)
    )


def test_metrics_merges_the_gateway_and_the_embedded_worker(fake_provider, tmp_path):
    fake = fake_provider("primary")
    fake.on("GET", "/v1/models", openai_models("gpt-4o")).on("POST", "/v1/chat/completions", chat_upstream("primary"))
    server = start(tmp_path, f"primary:{fake.url}/v1:sk-test-key-0001", worker=True)
    try:
        with server.client() as client:
            for content in ("tokens:11", "tokens:5", "fail:primary:500"):
                client.post(
                    "/v1/chat/completions",
                    json={"model": "gpt-4o", "messages": [{"role": "user", "content": content}]},
                )

        def scraped():
            response = server.get("/metrics")
            assert response.status_code == 200, response.text
            samples = scrape(response.text)
            # Start-up discovery probes once; more can only come from the worker's schedule.
            probes = metric_total(samples, "eldric_backend_probes_total", backend="primary")
            requests = metric_total(samples, "eldric_requests_total", backend="primary")
            return samples if probes >= 3 and requests == 3 else None

        samples = server.wait_for(scraped, "requests and worker probes in /metrics", timeout=20)
        worker_pid = re.search(r"embedded Celery worker started \(pid (\d+)", server.logs()).group(1)
        listed = server.get("/api/v1/backends", headers={"Authorization": f"Bearer {TOKEN}"}).json()["data"]
    finally:
        server.stop()

    assert metric_total(samples, "eldric_requests_total", backend="primary", model="gpt-4o", status_class="2xx") == 2
    assert metric_total(samples, "eldric_errors_total", backend="primary", status_class="5xx") == 1
    assert metric_total(samples, "eldric_tokens_total", backend="primary", kind="prompt") == 16
    assert metric_total(samples, "eldric_tokens_total", backend="primary", kind="completion") == 2 * COMPLETION_TOKENS
    assert metric_total(samples, "eldric_request_duration_seconds_count", backend="primary") == 3
    assert metric_total(samples, "eldric_backend_health_status", backend="primary", status="healthy") == 1
    assert metric_total(samples, "eldric_backend_probe_duration_seconds_count", backend="primary") >= 3
    assert ("eldric_backend_circuit_state", (("backend", "primary"),)) in samples
    assert listed[0]["circuit"] == "closed" and listed[0]["routable"] is True
    assert listed[0]["traffic"]["last_5m"]["requests"] == 3 and listed[0]["traffic"]["last_5m"]["errors"] == 1
    # The worker wrote files of its own, which /metrics merged in.
    assert any(path.name.endswith(f"_{worker_pid}.db") for path in (tmp_path / "prometheus").iterdir())


def test_while_clients_get_circuit_open_the_api_does_not_say_routable(fake_provider, tmp_path):
    fake = fake_provider("primary")
    fake.on("GET", "/v1/models", openai_models("gpt-4o")).on("POST", "/v1/chat/completions", chat_upstream("primary"))
    # No worker: a successful probe would close the circuit again.
    server = start(
        tmp_path,
        f"primary:{fake.url}/v1:sk-test-key-0001",
        worker=False,
        ELDRIC_BREAKER_FAILURES="2",
        ELDRIC_BREAKER_COOLDOWN_SECONDS="600",
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "fail:primary:500"}]}
    try:
        for _ in range(2):
            assert server.post("/v1/chat/completions", json=body).status_code == 500
        refused = server.post("/v1/chat/completions", json=body)

        def primary():
            backend = server.get("/api/v1/backends/primary", headers=auth).json()
            return backend if backend["circuit"] == "open" else None

        backend = server.wait_for(primary, "the open circuit in /api/v1/backends", timeout=10)
        catalogue = server.get("/api/v1/models", headers=auth).json()["data"]
    finally:
        server.stop()

    assert refused.status_code == 503 and "circuit_open" in refused.text
    assert backend["health_status"] == "healthy"  # the probe's verdict, which is not the whole story
    assert backend["routable"] is False
    assert [m["routable"] for m in catalogue if m["id"] == "gpt-4o"] == [False]


# --- 1000 mixed requests ------------------------------------------------------------------


def plan_requests(count: int, seed: int = 8) -> list[dict]:
    """A reproducible mix: streams and not, with and without usage asked for, failovers,
    upstream errors (no other backend), upstream 4xx and the client's own mistakes."""
    rng = random.Random(seed)
    kinds = ["ok"] * 50 + ["failover"] * 15 + ["upstream_5xx"] * 10 + ["upstream_4xx"] * 10 + ["bad_request"] * 15
    plans = []
    for index in range(count):
        kind = rng.choice(kinds)
        tokens = rng.randint(1, 500)
        model = "m-shared" if kind in ("ok", "failover") else "m-solo"
        content = f"tokens:{tokens}"
        if kind == "failover":
            content += " fail:primary:503"
        elif kind == "upstream_5xx":
            content += " fail:primary:500"
        elif kind == "upstream_4xx":
            content += " fail:primary:422"
        stream = kind != "bad_request" and rng.random() < 0.5
        body: dict = {"model": model, "messages": [{"role": "user", "content": content}], "stream": stream}
        if stream and rng.random() < 0.5:
            body["stream_options"] = {"include_usage": True}
        if kind == "bad_request":
            body = rng.choice([{"model": model}, {"model": model, "messages": []}, {"messages": [{"role": "user"}]}])
        plans.append({"index": index, "kind": kind, "tokens": tokens, "body": body})
    return plans


def send(client: httpx.Client, plan: dict) -> dict:
    """What this client saw: status, answering backend, and the usage it was shown."""
    body = plan["body"]
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        raw = response.read()
    seen = {"status": response.status_code, "backend": response.headers.get("x-eldric-backend", ""), "usage": None}
    if body.get("stream") and response.status_code == 200:
        for line in raw.decode().splitlines():
            if line.startswith("data: {") and '"usage"' in line:
                seen["usage"] = json.loads(line[6:]).get("usage")
    elif response.status_code == 200:
        seen["usage"] = json.loads(raw).get("usage")
    return seen


def rollup_totals(database) -> dict[str, dict]:
    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT backend, SUM(requests), SUM(errors), SUM(errors_4xx), SUM(errors_5xx), SUM(failovers), "
            "SUM(prompt_tokens), SUM(completion_tokens), SUM(streams) FROM traffic_trafficminute GROUP BY backend"
        ).fetchall()
        days = db.execute("SELECT SUM(requests), SUM(errors), SUM(prompt_tokens) FROM traffic_trafficday").fetchone()
    names = ("requests", "errors", "errors_4xx", "errors_5xx", "failovers", "prompt", "completion", "streams")
    totals = {backend: dict(zip(names, values, strict=True)) for backend, *values in rows}
    totals["__days__"] = dict(zip(("requests", "errors", "prompt"), days, strict=True))
    return totals


def test_a_thousand_mixed_requests_add_up_exactly_in_the_rollups(fake_provider, tmp_path):
    primary = fake_provider("primary")
    secondary = fake_provider("secondary")
    primary.on("GET", "/v1/models", openai_models("m-shared", "m-solo"))
    primary.on("POST", "/v1/chat/completions", chat_upstream("primary"))
    secondary.on("GET", "/v1/models", openai_models("m-shared"))
    secondary.on("POST", "/v1/chat/completions", chat_upstream("secondary"))
    server = start(
        tmp_path,
        f"primary:{primary.url}/v1:sk-test-key-0001",
        f"secondary:{secondary.url}/v1:sk-test-key-0002",
        worker=False,
        # Failovers stay failovers: the circuit never opens in this run.
        ELDRIC_BREAKER_FAILURES="100000",
    )
    plans = plan_requests(1000)
    try:
        with server.client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
            seen = list(pool.map(lambda plan: send(client, plan), plans))
        # The first flush after the last request; then a graceful stop flushes the rest.
        database = tmp_path / "eldric.sqlite3"
        server.wait_for(
            lambda: sum(t["requests"] for b, t in rollup_totals(database).items() if b != "__days__") == 1000,
            "1000 requests in the roll-ups",
            timeout=15,
        )
    finally:
        assert server.stop() == 0

    totals = rollup_totals(database)
    by_backend = Counter(s["backend"] for s in seen)
    errors = Counter(s["backend"] for s in seen if s["status"] >= 400)
    errors_4xx = Counter(s["backend"] for s in seen if 400 <= s["status"] < 500)
    errors_5xx = Counter(s["backend"] for s in seen if s["status"] >= 500)
    prompt = Counter()
    completion = Counter()
    for plan, s in zip(plans, seen, strict=True):
        if s["status"] == 200:
            # What the upstream reported; the clients that asked for usage saw exactly this.
            prompt[s["backend"]] += plan["tokens"]
            completion[s["backend"]] += COMPLETION_TOKENS
            if s["usage"] is not None:
                assert s["usage"]["prompt_tokens"] == plan["tokens"]
    streams = Counter(s["backend"] for plan, s in zip(plans, seen, strict=True) if plan["body"].get("stream"))

    # The mix really is mixed.
    assert {s["status"] for s in seen} >= {200, 400, 422, 500}
    assert by_backend["secondary"] > 50 and by_backend[""] > 50
    for backend in ("primary", "secondary", ""):
        got = totals.get(backend, {})
        assert got.get("requests", 0) == by_backend[backend], backend
        assert got.get("errors", 0) == errors[backend], backend
        assert got.get("errors_4xx", 0) == errors_4xx[backend], backend
        assert got.get("errors_5xx", 0) == errors_5xx[backend], backend
        assert got.get("prompt", 0) == prompt[backend], backend
        assert got.get("completion", 0) == completion[backend], backend
        assert got.get("streams", 0) == streams[backend], backend
    failovers = sum(1 for plan, s in zip(plans, seen, strict=True) if plan["kind"] == "failover")
    assert totals["primary"]["failovers"] == failovers
    assert totals["__days__"] == {
        "requests": 1000,
        "errors": sum(errors.values()),
        "prompt": sum(prompt.values()),
    }
