"""One fresh PostgreSQL database per test module, shared by real ``eldric-cloudd`` processes."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from tests.cli_process import GatewayProcess
from tests.conftest import service_missing
from tests.e2e.conftest import PG_DSN

ADMIN_TOKEN = "eldadm_instances-test-0123456789abcdef"


@pytest.fixture(scope="module")
def shared_database():
    import psycopg

    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        service_missing("PostgreSQL on 127.0.0.1:5432")
    name = f"eldric_instances_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with contextlib.suppress(psycopg.Error):
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="module")
def shared_env(shared_database) -> dict[str, str]:
    """What every instance of the deployment shares: the database, the encryption key, the
    admin token."""
    from cryptography.fernet import Fernet

    return {
        "DATABASE_URL": shared_database,
        "ELDRIC_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "ELDRIC_ADMIN_TOKEN": ADMIN_TOKEN,
    }


@pytest.fixture
def instances(shared_env, tmp_path):
    """``instances(name, *args, config=None)`` starts an instance named ``name``
    (ELDRIC_INSTANCE) on the module's database; all are stopped after the test."""
    started: list[GatewayProcess] = []

    def start(name: str, *args: str, **kwargs) -> GatewayProcess:
        env = {**shared_env, "ELDRIC_INSTANCE": name, **kwargs.pop("env", {})}
        process = GatewayProcess(*args, env=env, data_dir=tmp_path / name, name=name, **kwargs)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
