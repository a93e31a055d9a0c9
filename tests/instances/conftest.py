"""One fresh PostgreSQL database per test module, shared by real ``eldric-cloudd`` processes."""

from __future__ import annotations

import pytest

from tests.cli_process import GatewayProcess
from tests.e2e.conftest import fresh_postgres_database

ADMIN_TOKEN = "eldadm_instances-test-0123456789abcdef"


@pytest.fixture(scope="module")
def shared_database():
    with fresh_postgres_database("eldric_instances") as url:
        yield url


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
