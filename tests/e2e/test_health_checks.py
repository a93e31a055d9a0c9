"""Health checks and discovery on Celery: the embedded default and a separate Redis worker."""

import os
import subprocess
import sys

from tests.cli_process import BIN, GatewayProcess
from tests.fakes.server import FakeProvider, openai_models, reply_json

ADMIN = {"Authorization": "Bearer test-admin-token"}
ENV = {"ELDRIC_ADMIN_TOKEN": "test-admin-token"}
SHARED_FERNET_KEY = "eWJ5dGVzLWZvci1hLXRlc3QtZmVybmV0LWtleS0wMDA="


def backend_states(gateway) -> dict[str, str]:
    return {b["name"]: b["health_status"] for b in gateway.get("/api/v1/backends", headers=ADMIN).json()["data"]}


def model_ids(gateway) -> set[str]:
    return {m["id"] for m in gateway.get("/v1/models").json()["data"]}


def test_embedded_worker_marks_a_backend_down_and_back_up_without_redis(fake_provider):
    fake = fake_provider("primary")
    fake.on("GET", "/v1/models", openai_models("gpt-4o"))
    env = {**ENV, "REDIS_URL": ""}
    gateway = GatewayProcess(
        "--health-interval", "1000", "--backends", f"primary:{fake.url}/v1:sk-k-1234", worker=True, env=env
    ).start()
    revived = None
    try:
        assert gateway.get("/health").json()["status"] == "healthy"
        fake.stop()
        gateway.wait_for(lambda: gateway.get("/health").json()["status"] == "unhealthy", timeout=15)
        assert backend_states(gateway) == {"primary": "unhealthy"}

        revived = FakeProvider(name="primary", port=fake.port).start()
        revived.on("GET", "/v1/models", openai_models("gpt-4o"))
        gateway.wait_for(lambda: gateway.get("/health").json()["status"] == "healthy", timeout=15)
        assert backend_states(gateway) == {"primary": "healthy"}
    finally:
        assert gateway.stop() == 0
        if revived:
            revived.stop()
    # The embedded worker stopped with eldric-cloudd.
    assert "embedded Celery worker stopped" in gateway.logs()


def test_rejected_key_shows_as_auth_failed_and_leaves_routing(fake_provider):
    fake = fake_provider("xai")
    fake.on("GET", "/v1/models", openai_models("grok-3"))
    gateway = GatewayProcess(
        "--health-interval",
        "1000",
        "--backends",
        f"xai:{fake.url}/v1:xai-bad-key-5555",
        worker=True,
        env={**ENV, "REDIS_URL": ""},
    ).start()
    try:
        # xAI answers a bad key with 400 "Incorrect API key provided".
        fake.on(
            "GET",
            "/v1/models",
            reply_json(
                {"code": "invalid-argument", "error": "Incorrect API key provided: xa***55. Obtain an API key."},
                status=400,
            ),
        )
        gateway.wait_for(lambda: backend_states(gateway) == {"xai": "auth_failed"}, timeout=15)
        gateway.wait_for(lambda: gateway.get("/health").json()["status"] == "unhealthy", timeout=5)
        response = gateway.post(
            "/v1/chat/completions", json={"model": "grok-3", "messages": [{"role": "user", "content": "x"}]}
        )
    finally:
        gateway.stop()

    assert response.status_code == 503
    assert "xai: auth_failed" in response.json()["error"]["message"]
    assert gateway.logs().count("API key rejected") == 1  # one warning per transition, not per probe
    assert "xai-bad-key-5555" not in gateway.logs()


def start_celery_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(BIN / "celery"),
            "-A",
            "eldric_cloud",
            "worker",
            "-B",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "-s",
            os.path.join(env["ELDRIC_DATA_DIR"], "beat-schedule"),
        ],
        env={**os.environ, **env},
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_separate_redis_worker_probes_and_refreshes_discovery_for_several_instances(
    fake_provider,
    redis_url,
    postgres_url,
):
    fake = fake_provider("groq")
    fake.on("GET", "/v1/models", openai_models("llama-3.3-70b", "gemma2-9b"))
    env = {
        **ENV,
        "REDIS_URL": redis_url,
        "DATABASE_URL": postgres_url,
        "ELDRIC_ENCRYPTION_KEY": SHARED_FERNET_KEY,
        "ELDRIC_DISCOVERY_INTERVAL_SECONDS": "1",
        "ELDRIC_SCHEDULER_TICK_SECONDS": "0.5",
    }
    backends = f"groq:{fake.url}/v1:gsk_key_6666"
    one = GatewayProcess(
        "--health-interval", "1000", "--backends", backends, env={**env, "ELDRIC_INSTANCE": "one"}
    ).start()
    two = GatewayProcess(
        "--health-interval", "1000", "--backends", backends, env={**env, "ELDRIC_INSTANCE": "two"}
    ).start()
    worker = start_celery_worker({**env, "ELDRIC_DATA_DIR": one.data_dir})
    try:
        assert one.get("/health").json()["worker_id"] != two.get("/health").json()["worker_id"]
        # Discovery refresh: a model leaves the provider's list, another joins.
        fake.on("GET", "/v1/models", openai_models("llama-3.3-70b", "qwen-qwq-32b"))
        for gateway in (one, two):
            gateway.wait_for(lambda g=gateway: model_ids(g) == {"llama-3.3-70b", "qwen-qwq-32b"}, timeout=20)
        # Health probe: the provider goes away and both instances stop routing to it.
        fake.stop()
        for gateway in (one, two):
            gateway.wait_for(lambda g=gateway: g.get("/health").json()["status"] == "unhealthy", timeout=20)
    finally:
        worker.terminate()
        worker.wait(15)
        one.stop()
        two.stop()


def test_tasks_run_through_a_real_worker(fake_provider, redis_url, tmp_path):
    """Each task family once, sent by .delay() to a worker on Redis, observed in the shared DB."""
    fake = fake_provider("mistral")
    fake.on("GET", "/v1/models", openai_models("mistral-large"))
    env = {"REDIS_URL": redis_url, "ELDRIC_DATA_DIR": str(tmp_path), "ELDRIC_ENCRYPTION_KEY": SHARED_FERNET_KEY}
    script = f"""
import os, time
import django
django.setup()
from backends.models import Backend
from backends.services import backends_static_apply
from backends.specs import BackendSpec
from django.core.management import call_command
call_command("migrate", verbosity=0)
backends_static_apply(specs=[BackendSpec(name="mistral", url="{fake.url}/v1", api_key="k-7777")])
from backends.tasks import backends_discover_all_task, backends_check_due_task
backends_discover_all_task.delay()
backends_check_due_task.delay()
deadline = time.time() + 20
while time.time() < deadline:
    b = Backend.objects.get(name="mistral")
    if b.models.count() == 1 and b.last_checked_at and b.health_status == "healthy":
        print("OK", b.models.first().model_id, b.latency_ms is not None)
        break
    time.sleep(0.2)
"""
    worker = start_celery_worker(env)
    try:
        result = subprocess.run(
            [sys.executable, "-c", script],
            check=False,
            env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": "eldric_cloud.settings"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        worker.terminate()
        worker.wait(15)

    assert "OK mistral-large True" in result.stdout, result.stderr
