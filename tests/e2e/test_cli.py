"""The seed's way of starting eldric-cloudd, end to end through the real command."""

import json
import re

import openai
import pytest

from tests.cli_process import GatewayProcess, run_cli
from tests.fakes import recordings
from tests.fakes.server import openai_models, reply_bytes

KEY_A = "sk-live-aaaaaaaaaaaaaaaa1111"
KEY_B = "xai-live-bbbbbbbbbbbbbbbb2222"
SHARED_FERNET_KEY = "eWJ5dGVzLWZvci1hLXRlc3QtZmVybmV0LWtleS0wMDA="


@pytest.fixture
def providers(fake_provider):
    openai_fake, xai_fake = fake_provider("openai"), fake_provider("xai")
    openai_fake.on("GET", "/v1/models", openai_models("gpt-4o", "shared"))
    xai_fake.on("GET", "/v1/models", openai_models("grok-3", "shared"))
    for fake in (openai_fake, xai_fake):
        fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    return openai_fake, xai_fake


def test_help_documents_every_flag():
    result = run_cli("--help")

    assert result.returncode == 0
    for flag in (
        "--port",
        "--backends",
        "--default-backend",
        "--config",
        "--controller",
        "--health-interval",
        "--server",
        "name:url:apikey",
        "_API_KEY",
    ):
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backends", "broken-entry-without-url"], "--backends entry 1"),
        (["--backends", "x:ftp://h/v1:KEY"], "http:// or https://"),
        (["--backends", "a:http://h/v1,a:http://h2/v1"], "listed twice"),
        (["--backends", "a:http://127.0.0.1:9/v1", "--default-backend", "nope"], "--default-backend: 'nope'"),
        (["--config", "/nonexistent/cloudd.json"], "/nonexistent/cloudd.json: cannot read"),
    ],
)
def test_bad_start_up_input_stops_with_a_clear_message(args, message):
    result = run_cli(*args)

    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_config_file_errors_name_the_file_and_the_field(tmp_path):
    config = tmp_path / "cloudd.json"
    config.write_text(json.dumps({"backends": [{"name": "xai", "url": "https://api.x.ai/v1", "priority": "high"}]}))

    result = run_cli("--config", str(config))

    assert result.returncode == 2
    assert f"{config}: backends[0].priority: expected an integer" in result.stderr


def test_seed_style_start_routes_by_model_and_keeps_keys_out_of_the_logs(providers):
    openai_fake, xai_fake = providers
    gateway = GatewayProcess(
        "--backends",
        f"xai:{xai_fake.url}/v1:{KEY_B},openai:{openai_fake.url}/v1:{KEY_A}",
        "--default-backend",
        "openai",
    ).start()
    try:
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        owners = {m.id: m.owned_by for m in client.models.list()}
        grok = client.chat.completions.with_raw_response.create(
            model="grok-3", messages=[{"role": "user", "content": "x"}]
        )
        unknown = client.chat.completions.with_raw_response.create(
            model="mystery", messages=[{"role": "user", "content": "x"}]
        )
        health = gateway.get("/health").json()
    finally:
        gateway.stop()

    # First in --backends = highest priority, so xai owns the shared model.
    assert owners == {"grok-3": "xai", "gpt-4o": "openai", "shared": "xai"}
    assert grok.headers["x-eldric-backend"] == "xai"
    assert unknown.headers["x-eldric-backend"] == "openai"
    assert xai_fake.requests_to("/v1/chat/completions")[0].headers["Authorization"] == f"Bearer {KEY_B}"
    assert health["status"] == "healthy" and health["models_available"] == 3
    assert re.fullmatch(r"cld-[0-9a-f]{8}", health["worker_id"])
    logs = gateway.logs()
    assert "3 models" in logs and "SQLite at" in logs and "xai" in logs
    assert KEY_A not in logs and KEY_B not in logs


def test_empty_key_is_read_from_the_environment(providers):
    openai_fake, _ = providers
    gateway = GatewayProcess(
        "--backends", f"openai:{openai_fake.url}/v1:", env={"OPENAI_API_KEY": "sk-from-env-3333"}
    ).start()
    try:
        gateway.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]})
    finally:
        gateway.stop()

    assert openai_fake.requests_to("/v1/chat/completions")[0].headers["Authorization"] == "Bearer sk-from-env-3333"


def test_worker_id_and_state_survive_a_restart(providers):
    openai_fake, _ = providers
    first = GatewayProcess("--backends", f"openai:{openai_fake.url}/v1:{KEY_A}").start()
    worker_id = first.get("/health").json()["worker_id"]
    first.stop()

    second = GatewayProcess("--backends", f"openai:{openai_fake.url}/v1:{KEY_A}", data_dir=first.data_dir).start()
    try:
        assert second.get("/health").json()["worker_id"] == worker_id
    finally:
        second.stop()


def test_postgres_holds_the_state_when_database_url_points_at_it(providers, postgres_url):
    openai_fake, xai_fake = providers
    # Instances sharing a database share the key that encrypts upstream keys.
    env = {"DATABASE_URL": postgres_url, "ELDRIC_ENCRYPTION_KEY": SHARED_FERNET_KEY}
    first = GatewayProcess("--backends", f"openai:{openai_fake.url}/v1:{KEY_A}", env=env).start()
    worker_id = first.get("/health").json()["worker_id"]
    first.stop()

    # A different data dir: everything that persists must come from Postgres.
    second = GatewayProcess(
        "--backends", f"openai:{openai_fake.url}/v1:{KEY_A},xai:{xai_fake.url}/v1:{KEY_B}", env=env
    ).start()
    try:
        health = second.get("/health").json()
        models = {m["id"] for m in second.get("/v1/models").json()["data"]}
    finally:
        second.stop()

    assert health["worker_id"] == worker_id
    assert models == {"gpt-4o", "grok-3", "shared"}
    assert "postgresql database" in second.logs()
