"""Two real ``eldric-cloudd`` processes on one PostgreSQL and one Redis share their passive
state and hear of routing changes (issue 12: "Passive state shared", "Routing changes
propagate", "Work done once").

Each test counts what reached the fake upstream: an instance that "stops routing to it"
must not have sent it a request to find out.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid

import openai
import pytest
from aiohttp import web

from tests.cli_process import clean_environment
from tests.fakes import recordings
from tests.fakes.server import openai_models, reply_bytes, reply_json
from tests.instances import shared_support
from tests.instances.conftest import ADMIN_TOKEN

USER = [{"role": "user", "content": "What is 4200 + 42?"}]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHAT = "/v1/chat/completions"
COOLDOWN = shared_support.COOLDOWN
redis_env = shared_support.redis_env  # the module's Redis, a fixture


@pytest.fixture
def pair(instances, redis_env, fake_provider):
    """Instances ``a`` and ``b`` on the module's Redis, both declaring the same static backend
    (a fresh name per test, so no test sees another's breaker state)."""
    upstream = fake_provider("up")
    upstream.on("GET", "/v1/models", openai_models("m-up"))
    upstream.on("POST", CHAT, reply_bytes(recordings.response("openai", "chat_text")))
    name = f"up{uuid.uuid4().hex[:6]}"
    flag = f"{name}:{upstream.url}/v1"
    a = instances(f"{name}-a", "--backends", flag, env=redis_env)
    b = instances(f"{name}-b", "--backends", flag, env=redis_env)
    for instance in (a, b):
        instance.wait_for(lambda i=instance: "m-up" in i.models(), "the catalogue")
    return a, b, upstream


def chat(instance, *, timeout: float = 30):
    """A chat request through the official SDK: the answer, or the SDK's error."""
    with openai.OpenAI(base_url=instance.url + "/v1", api_key="k", max_retries=0, timeout=timeout) as client:
        try:
            return client.chat.completions.with_raw_response.create(model="m-up", messages=USER)
        except openai.APIStatusError as exc:
            return exc


def status_of(result) -> int:
    return result.status_code


def failing(status: int = 500, headers: dict[str, str] | None = None):
    return reply_json(
        {"error": {"message": "upstream is broken", "type": "server_error"}}, status=status, headers=headers
    )


def slow_success(seconds: float):
    body = recordings.response("openai", "chat_text")

    async def behaviour(request: web.Request) -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response(body=body, content_type="application/json")

    return behaviour


def test_a_circuit_opened_in_a_is_respected_by_b_without_b_sending_a_request(pair):
    a, b, upstream = pair
    upstream.on("POST", CHAT, failing())

    # given: two failures through A open A's circuit
    assert [status_of(chat(a)) for _ in range(2)] == [500, 500]
    sent = len(upstream.requests_to(CHAT))
    assert sent == 2

    # then: B refuses the backend within a second, without trying it
    time.sleep(1.0)
    refused = chat(b)
    assert status_of(refused) == 503
    assert "circuit_open" in str(refused.body)
    assert len(upstream.requests_to(CHAT)) == sent


def test_only_one_trial_request_reaches_a_recovering_backend_across_both_instances(pair):
    a, b, upstream = pair
    upstream.on("POST", CHAT, failing())
    for _ in range(2):
        chat(a)
    b.wait_for(lambda: "circuit_open" in str(chat(b).body), "B sees the open circuit")
    # Counted only now: a request B sent before the open circuit reached it went upstream.
    opened = len(upstream.requests_to(CHAT))

    # given: the backend is back, but slow, so the trial is still running while more arrive
    upstream.on("POST", CHAT, slow_success(2.0))
    time.sleep(COOLDOWN)

    # when: both instances get requests throughout the half-open period
    results: list = []
    stop = threading.Event()

    def keep_asking(instance):
        while not stop.is_set():
            results.append(status_of(chat(instance)))
            time.sleep(0.05)

    threads = [threading.Thread(target=keep_asking, args=(i,)) for i in (a, b, a, b)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    # then: one trial is in flight, and nothing else reached the upstream
    trials = len(upstream.requests_to(CHAT)) - opened
    stop.set()
    for thread in threads:
        thread.join(30)
    assert trials == 1
    assert 200 in results
    # and once it answered, both route to it again (the one that did not run the trial hears
    # of the closed circuit through Redis, within about a second)
    a.wait_for(lambda: status_of(chat(a)) == 200, "A routes to the recovered backend", timeout=3)
    b.wait_for(lambda: status_of(chat(b)) == 200, "B routes to the recovered backend", timeout=3)


def test_a_retry_after_seen_by_a_blocks_the_backend_in_b(pair):
    a, b, upstream = pair
    upstream.on("POST", CHAT, failing(429, {"Retry-After": "30"}))

    assert status_of(chat(a)) == 429
    sent = len(upstream.requests_to(CHAT))
    time.sleep(1.0)
    blocked = chat(b)
    assert status_of(blocked) == 503
    assert "rate_limited" in str(blocked.body)
    assert len(upstream.requests_to(CHAT)) == sent


def test_a_backend_added_through_a_is_routable_in_b_within_a_second_without_database_polling(
    instances, redis_env, fake_provider
):
    upstream = fake_provider("added")
    upstream.on("GET", "/v1/models", openai_models("m-added"))
    upstream.on("POST", CHAT, reply_bytes(recordings.response("openai", "chat_text")))
    # The database poll is slow: only the Redis notice can bring the change in time.
    slow_poll = {**redis_env, "ELDRIC_SNAPSHOT_POLL_SECONDS": "60", "ELDRIC_SNAPSHOT_SAFETY_POLL_SECONDS": "60"}
    run = uuid.uuid4().hex[:6]
    a = instances(f"add{run}-a", env=slow_poll)
    b = instances(f"add{run}-b", env=slow_poll)
    for instance in (a, b):
        instance.wait_for_log("shared state: connected to Redis")

    name = f"added{run}"
    created = a.post(
        "/api/v1/backends",
        json={"name": name, "type": "openai_compatible", "url": upstream.url + "/v1"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    try:
        started = time.monotonic()
        b.wait_for(lambda: "m-added" in b.models(), "B lists the new backend's model", timeout=5)
        assert time.monotonic() - started < 1.5
        assert status_of(chat_model(b, "m-added")) == 200
    finally:
        a.client().delete(f"/api/v1/backends/{name}", headers=ADMIN)


def chat_model(instance, model: str):
    with openai.OpenAI(base_url=instance.url + "/v1", api_key="k", max_retries=0, timeout=30) as client:
        return client.chat.completions.with_raw_response.create(model=model, messages=USER)


RACER = """
import sys, time, django
django.setup()
from backends.services import backends_claim_discovery, backend_discover
start = float(sys.argv[1])
while time.time() < start:
    time.sleep(0.001)
claimed = backends_claim_discovery(interval=300)
for backend_id in claimed:
    backend_discover(backend_id=backend_id)
print(",".join(map(str, claimed)))
"""


def test_two_workers_racing_to_discover_run_each_backend_once(instances, shared_env, fake_provider):
    upstreams = []
    flags = []
    run = uuid.uuid4().hex[:6]
    for n in range(3):
        upstream = fake_provider(f"d{n}")
        upstream.on("GET", "/v1/models", openai_models(f"m-d{n}"))
        upstreams.append(upstream)
        flags.append(f"disc{run}{n}:{upstream.url}/v1")
    instance = instances(f"disc{run}", "--backends", ",".join(flags))
    instance.wait_for(lambda: {"m-d0", "m-d1", "m-d2"} <= set(instance.models()), "the catalogue")
    before = [len(u.requests_to("/v1/models")) for u in upstreams]

    # when: two workers, as two instances' embedded Celery workers would, claim at the same instant
    env = clean_environment(**shared_env, DJANGO_SETTINGS_MODULE="eldric_cloud.settings")
    env["ELDRIC_DATA_DIR"] = str(instance.data_dir)
    start = time.time() + 3
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(start)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [racer.communicate(timeout=60) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), outputs
    claimed = [set(out.split()[-1].split(",")) if out.strip() else set() for out, _ in outputs]

    # then: every backend of ours was discovered once, by one of them
    after = [len(u.requests_to("/v1/models")) for u in upstreams]
    assert [x - y for x, y in zip(after, before, strict=True)] == [1, 1, 1]
    assert not (claimed[0] & claimed[1])


def health_counts(instance) -> dict:
    return instance.get("/health").json()["backends"]


def test_a_backend_that_dies_is_unhealthy_in_every_instance_soon_after_the_probe_without_database_polling(
    instances, redis_env, fake_provider
):
    upstream = fake_provider("dies")
    upstream.on("GET", "/v1/models", openai_models("m-dies"))
    run = uuid.uuid4().hex[:6]
    flag = f"dies{run}:{upstream.url}/v1"
    slow_poll = {
        **redis_env,
        "ELDRIC_SNAPSHOT_POLL_SECONDS": "60",
        "ELDRIC_SNAPSHOT_SAFETY_POLL_SECONDS": "60",
        "ELDRIC_SCHEDULER_TICK_SECONDS": "0.5",
    }
    # A runs the embedded Celery worker, which probes; B only serves.
    a = instances(f"dies{run}-a", "--backends", flag, "--health-interval", "500", env=slow_poll, worker=True)
    b = instances(f"dies{run}-b", "--backends", flag, "--health-interval", "500", env=slow_poll)
    b.wait_for_log("shared state: connected to Redis")
    a.wait_for(lambda: len(upstream.requests_to("/v1/models")) >= 3, "A's worker probing", timeout=60)
    assert health_counts(b)["unhealthy"] == 0

    # when: the backend goes away
    upstream.stop()
    # then: A's probe says so, and B hears of it through Redis, not from a database poll
    b.wait_for(lambda: health_counts(b)["unhealthy"] == 1, "B sees the backend unhealthy", timeout=10)
    a.wait_for(lambda: health_counts(a)["unhealthy"] == 1, "A sees the backend unhealthy", timeout=5)
