"""The management API on the real ``eldric-cloudd`` process, as an operator runs it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.api.conftest import ADMIN_TOKEN, RAW_KEY
from tests.cli_process import GatewayProcess
from tests.fakes.server import openai_models

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TOKEN_RE = re.compile(r"eldadm_[A-Za-z0-9_-]{20,}")


def server_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        # Always SQLite in the test's own directory, whatever the environment says.
        "DATABASE_URL": f"sqlite:///{data_dir / 'eldric.sqlite3'}",
        "ELDRIC_HEALTH_TIMEOUT": "2",
        "ELDRIC_MASTER_KEY": "",
        **extra,
    }


def model_ids(server: GatewayProcess) -> list[str]:
    return [m["id"] for m in server.get("/v1/models").json()["data"]]


def test_api_added_backends_route_at_once_and_survive_a_restart(fake_provider, tmp_path):
    fake = fake_provider("up").on("GET", "/v1/models", openai_models("model-a", "model-b"))
    env = server_env(tmp_path, ELDRIC_ADMIN_TOKEN=ADMIN_TOKEN)
    bodies: list[bytes] = []

    first = GatewayProcess(data_dir=str(tmp_path), env=env).start()
    try:
        created = first.post(
            "/api/v1/backends",
            headers=AUTH,
            json={"name": "up", "type": "openai_compatible", "url": fake.url + "/v1", "api_key": RAW_KEY},
        )
        bodies.append(created.content)
        assert created.status_code == 201, created.text
        assert created.json()["model_count"] == 2
        # The gateway's snapshot picks it up within its poll interval: no restart.
        first.wait_for(lambda: "model-a" in model_ids(first), timeout=2)
        for path in ("/api/v1/backends", "/api/v1/backends/up", "/api/v1/models", "/api/v1/audit"):
            response = first.get(path, headers=AUTH)
            assert response.status_code == 200
            bodies.append(response.content)
        bodies.append(first.post("/api/v1/backends/up/test", headers=AUTH).content)
    finally:
        first.stop()

    second = GatewayProcess(data_dir=str(tmp_path), env=env).start()
    try:
        listed = second.get("/api/v1/backends", headers=AUTH).json()["data"]
        assert [(b["name"], b["source"], b["api_key"]) for b in listed] == [("up", "api", "sk-…5b4a")]
        assert "model-a" in model_ids(second)

        assert httpx.delete(second.url + "/api/v1/backends/up", headers=AUTH, timeout=10).status_code == 204
        second.wait_for(lambda: "model-a" not in model_ids(second), timeout=2)
    finally:
        second.stop()

    for body in bodies:
        assert RAW_KEY.encode() not in body
    database_files = list(tmp_path.glob("eldric.sqlite3*"))
    assert database_files
    for path in database_files:
        assert RAW_KEY.encode() not in path.read_bytes(), path
    assert RAW_KEY not in first.logs() + second.logs()
    # The key did reach the provider, so it was stored (encrypted) and used.
    assert fake.requests_to("/v1/models")[0].headers["Authorization"] == f"Bearer {RAW_KEY}"


def test_a_generated_admin_token_is_printed_once_and_can_be_rotated(tmp_path):
    env = server_env(tmp_path, ELDRIC_ADMIN_TOKEN="")

    first = GatewayProcess(data_dir=str(tmp_path), env=env).start()
    try:
        tokens = TOKEN_RE.findall(first.logs())
        assert len(tokens) == 1, first.logs()
        token = tokens[0]
        assert "rotate_admin_token" in first.logs()
        assert first.get("/api/v1/backends", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert first.get("/api/v1/backends", headers=AUTH).status_code == 401
        assert first.get("/api/v1/backends").status_code == 401
    finally:
        first.stop()
    assert token not in (tmp_path / "eldric.sqlite3").read_bytes().decode("latin-1")

    second = GatewayProcess(data_dir=str(tmp_path), env=env).start()
    try:
        assert TOKEN_RE.findall(second.logs()) == []  # not printed again
        assert second.get("/api/v1/backends", headers={"Authorization": f"Bearer {token}"}).status_code == 200

        rotated = subprocess.run(
            [sys.executable, "-m", "django", "rotate_admin_token", "--settings=eldric_cloud.settings"],
            env={**os.environ, "ELDRIC_DATA_DIR": str(tmp_path), **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        new_token = TOKEN_RE.findall(rotated.stdout)[0]

        assert new_token != token
        assert second.get("/api/v1/backends", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert second.get("/api/v1/backends", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200
        audit = second.get("/api/v1/audit", headers={"Authorization": f"Bearer {new_token}"}).json()["data"]
        assert audit[0]["action"] == "rotate_admin_token"
    finally:
        second.stop()


def test_the_schema_holds_up_to_schemathesis(fake_provider, tmp_path):
    """Generated requests against every operation: no 500s, and answers match the schema."""
    fake = fake_provider("up").on("GET", "/v1/models", openai_models("model-a"))
    env = server_env(tmp_path, ELDRIC_ADMIN_TOKEN=ADMIN_TOKEN, ELDRIC_HEALTH_TIMEOUT="0.5")
    server = GatewayProcess(data_dir=str(tmp_path), env=env).start()
    try:
        # Something for the {name} operations to find.
        server.post(
            "/api/v1/backends",
            headers=AUTH,
            json={"name": "up", "type": "openai_compatible", "url": fake.url + "/v1"},
        )
        assert server.get("/api/schema/").status_code == 401
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                f"{server.url}/api/schema/?format=json",
                "--header",
                f"Authorization: Bearer {ADMIN_TOKEN}",
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--max-examples",
                "15",
                "--phases",
                "examples,coverage,fuzzing",
                "--seed",
                "1",
                "--request-timeout",
                "10",
                "--max-time",
                "25",
                "--generation-database",
                "none",
                "--no-color",
                "--report-dir",
                str(tmp_path / "schemathesis-report"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Internal Server Error" not in server.logs()
