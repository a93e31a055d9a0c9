"""The real ``eldric-cloudd`` as a child process: licenses at start-up and the limits it enforces."""

from datetime import timedelta

import pytest

from tests.cli_process import GatewayProcess, run_cli
from tests.e2e.conftest import postgres_url  # noqa: F401 - a fixture, shared
from tests.fakes.server import free_port, openai_models
from tests.licenses.support import tampered

NO_LICENSE = {"ELDRIC_LICENSE_FILE": ""}


@pytest.fixture
def providers(fake_provider):
    def make(count: int) -> str:
        entries = []
        for i in range(count):
            fake = fake_provider(f"p{i}").on("GET", "/v1/models", openai_models(f"model-{i}"))
            entries.append(f"p{i}:{fake.url}/v1")
        return ",".join(entries)

    return make


def test_three_static_backends_on_free_exit_2_naming_the_limit(providers):
    result = run_cli("--backends", providers(3), "--no-worker", "--port", str(free_port()), env=NO_LICENSE)

    assert result.returncode == 2, result.stderr
    assert "Free tier" in result.stderr
    assert "allows 2 backends per worker" in result.stderr
    assert "--license FILE" in result.stderr


def test_two_static_backends_work_on_free_out_of_the_box(providers, tmp_path):
    server = GatewayProcess("--backends", providers(2), data_dir=tmp_path, env=NO_LICENSE).start()
    try:
        health = server.get("/health").json()
        models = server.models()
    finally:
        server.stop()

    assert health["license"] == {"tier": "free", "expires_at": None}
    assert health["backends"]["total"] == 2
    assert set(models) == {"model-0", "model-1"}


def test_license_flag_installs_a_license_that_lifts_the_limit(providers, tmp_path, license_key):
    path = license_key.issue_file("standard.json", tier="standard", days=30)

    server = GatewayProcess(
        "--backends", providers(3), "--license", str(path), data_dir=tmp_path, env=NO_LICENSE
    ).start()
    try:
        health = server.get("/health").json()
    finally:
        server.stop()

    assert health["license"]["tier"] == "standard"
    assert health["license"]["expires_at"] is not None
    assert health["backends"]["total"] == 3


def test_a_tampered_license_file_stops_start_up(providers, tmp_path, license_key):
    path = tmp_path / "forged.json"
    path.write_text(tampered(license_key.issue(tier="standard"), tier="enterprise"))

    result = run_cli(
        "--backends", providers(1), "--license", str(path), "--no-worker", "--port", str(free_port()), env=NO_LICENSE
    )

    assert result.returncode == 2
    assert "not a valid license" in result.stderr
    assert "does not verify" in result.stderr


def test_an_expired_license_in_grace_warns_in_health_and_the_log(providers, tmp_path, license_key):
    from datetime import UTC, datetime

    path = license_key.issue_file("old.json", tier="standard", days=10, now=datetime.now(UTC) - timedelta(days=12))

    server = GatewayProcess("--backends", providers(3), env={"ELDRIC_LICENSE_FILE": str(path)}, data_dir=tmp_path)
    server.start()
    try:
        health = server.get("/health").json()
        line = server.wait_for_log("grace period")
    finally:
        server.stop()

    assert health["license"]["tier"] == "standard"
    assert "grace_until" in health["license"] and "warning" in health["license"]
    assert "WARNING" in line


@pytest.mark.parametrize(("tier", "limit"), [("standard", 2), ("professional", 5)])
def test_instances_past_the_cloud_worker_limit_refuse_to_start(providers, postgres_url, license_key, tier, limit):  # noqa: F811
    """A 3rd live instance on Standard, a 6th on Professional, on one database: exit status 2."""
    from cryptography.fernet import Fernet

    path = license_key.issue_file(f"{tier}-instances.json", tier=tier, days=30)
    shared = {
        "DATABASE_URL": postgres_url,
        "ELDRIC_LICENSE_FILE": str(path),
        "ELDRIC_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }
    backends = providers(1)
    running = []
    try:
        for index in range(limit):
            env = {**shared, "ELDRIC_INSTANCE": f"instance-{index}"}
            running.append(GatewayProcess("--backends", backends, env=env).start())
        one_more = run_cli(
            "--backends",
            backends,
            "--no-worker",
            "--port",
            str(free_port()),
            env={**shared, "ELDRIC_INSTANCE": "one-more"},
        )
        # A cleanly stopped instance stops counting at once: a new one may take its place.
        running.pop().stop()
        running.append(GatewayProcess("--backends", backends, env={**shared, "ELDRIC_INSTANCE": "one-more"}).start())
    finally:
        for server in running:
            server.stop()

    assert one_more.returncode == 2, one_more.stderr
    assert f"{tier.title()} tier" in one_more.stderr
    assert f"allows {limit} cloud workers" in one_more.stderr
    assert "--license FILE" in one_more.stderr
