"""Real eldric-cloudd processes sharing one Postgres database (fresh per test) and one Redis:
limits are exact across instances, and a revoked key stops working everywhere within 1 s."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.cli_process import GatewayProcess
from tests.fakes.server import openai_models
from tests.keys.conftest import MODEL, REDIS_URL, USER, chat_reply

ADMIN_TOKEN = "eldadm_keys-test-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def license_env() -> dict[str, str]:
    """Two instances are more than Free allows: run them under the test session's Enterprise license."""
    from tests.licenses.support import session_key

    key = session_key()
    return {"ELDRIC_LICENSE_PUBLIC_KEYS": key.public, "ELDRIC_LICENSE_FILE": str(key.enterprise_file)}


@pytest.fixture
def pair(postgres_url, redis_prefix, fake_provider):
    fake = fake_provider("up")
    fake.on("GET", "/v1/models", openai_models(MODEL))
    fake.on("POST", "/v1/chat/completions", chat_reply())
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "ELDRIC_LIMITS_REDIS_PREFIX": redis_prefix,
        # Generous: a burst of 100 requests must not trip the fail-open timeout on a busy machine.
        "ELDRIC_LIMITS_REDIS_TIMEOUT": "5",
        "ELDRIC_ADMIN_TOKEN": ADMIN_TOKEN,
        "ELDRIC_REQUIRE_CLIENT_KEY": "1",
        # The default poll interval: the 1 s promise holds with it.
        "ELDRIC_SNAPSHOT_POLL_SECONDS": "0.5",
        **license_env(),
    }
    backends = f"up:{fake.url}/v1:sk-test-key-0001"
    started = []
    try:
        for name in ("one", "two"):
            started.append(GatewayProcess("--backends", backends, env={**env, "ELDRIC_INSTANCE": name}).start())
        yield started
    finally:
        for process in started:
            process.stop()


def create_key(process: GatewayProcess, **fields) -> dict:
    response = process.post("/api/v1/keys", headers=AUTH, json={"name": "shared", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def wait_until_known(processes, key: str) -> None:
    for process in processes:
        process.wait_for(
            lambda p=process: p.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200,
            "the new key in the access snapshot",
            timeout=10,
            interval=0.05,
        )


def test_two_processes_share_a_60_rpm_key_exactly(pair):
    key = create_key(pair[0], rpm=60)["key"]
    wait_until_known(pair, key)
    start = threading.Barrier(100)

    def send(index: int) -> httpx.Response:
        process = pair[index % 2]
        start.wait(30)
        return httpx.post(
            process.url + "/v1/chat/completions",
            json={"model": MODEL, "messages": USER},
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )

    began = time.monotonic()
    with ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(send, range(100)))
    assert time.monotonic() - began < 50, "the burst must fit in one minute window"
    statuses = [r.status_code for r in answers]
    assert statuses.count(200) == 60, statuses
    assert statuses.count(429) == 40, statuses
    # Both instances served some of the 60.
    assert {answers[i].status_code for i in range(0, 100, 2)} >= {200}
    assert {answers[i].status_code for i in range(1, 100, 2)} >= {200}
    for response in answers:
        assert response.headers["x-ratelimit-limit-requests"] == "60"
        assert "x-ratelimit-reset-requests" in response.headers
        if response.status_code == 429:
            assert response.headers["x-ratelimit-remaining-requests"] == "0"
            assert response.json()["error"]["code"] == "rate_limit_exceeded"
            assert response.json()["error"]["type"] == "requests"
            assert 1 <= int(response.headers["retry-after"]) <= 60
    remaining = sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in answers if r.status_code == 200)
    assert remaining == list(range(60)), "each successful request counted exactly once, across both"


def test_revocation_reaches_a_running_process_within_a_second(pair):
    created = create_key(pair[0])
    key = created["key"]
    wait_until_known(pair, key)
    headers = {"Authorization": f"Bearer {key}"}
    other = pair[1]
    assert (
        other.post("/v1/chat/completions", json={"model": MODEL, "messages": USER}, headers=headers).status_code == 200
    )

    revoked = pair[0].client().delete(f"/api/v1/keys/{created['id']}", headers=AUTH)
    revoked_at = time.monotonic()
    assert revoked.status_code == 200
    with other.client(timeout=5) as client:
        while True:
            status = client.get("/v1/models", headers=headers).status_code
            elapsed = time.monotonic() - revoked_at
            if status == 401:
                break
            assert elapsed < 1.0, f"the key still worked {elapsed:.2f} s after it was revoked"
            time.sleep(0.02)
    assert elapsed < 1.0
    refused = other.post("/v1/chat/completions", json={"model": MODEL, "messages": USER}, headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
