"""Real PostgreSQL and Redis for the multi-instance paths (fail under CI when missing)."""

from __future__ import annotations

import contextlib
import uuid

import pytest

from tests.conftest import service_missing

PG_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"


@contextlib.contextmanager
def fresh_postgres_database(prefix: str):
    """A new, empty Postgres database's URL; dropped on exit (a missing server fails under CI)."""
    import psycopg

    try:
        admin = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        service_missing("PostgreSQL on 127.0.0.1:5432")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
    finally:
        with contextlib.suppress(psycopg.Error):
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def postgres_url():
    """A fresh, empty Postgres database for one test; dropped afterwards."""
    with fresh_postgres_database("eldric_e2e") as url:
        yield url


@pytest.fixture
def redis_url():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.ConnectionError:
        service_missing("Redis on 127.0.0.1:6379")
    yield REDIS_URL
    client.flushdb()
    client.close()
