"""The routing snapshot's poller: what it picks up, and what it costs the database."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from django.db.backends.signals import connection_created

from backends.services import backend_create, backend_set_enabled
from gateway.snapshot import SnapshotSource

POLL = 0.05


def wait_until(predicate, timeout=5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture
def source(transactional_db):
    source = SnapshotSource()
    yield source
    source.stop()


def test_the_poller_picks_up_a_backend_added_and_disabled_at_runtime(source):
    source.start(POLL)
    assert "late" not in source.current.backends

    backend = backend_create(
        name="late", url="http://127.0.0.1:9/v1", kind="openai_compatible", actor="t", source="api"
    )

    assert wait_until(lambda: "late" in source.current.backends)
    backend_set_enabled(backend=backend, enabled=False, actor="t", source="api")
    assert wait_until(lambda: not source.current.backends["late"].enabled)


def test_the_poller_keeps_one_connection_between_polls(source):
    opened = []

    def count(sender, connection, **kwargs):
        if threading.current_thread().name == "snapshot-refresh":
            opened.append(connection)

    connection_created.connect(count)
    try:
        source.start(POLL)
        time.sleep(POLL * 20)
    finally:
        connection_created.disconnect(count)

    assert len(opened) <= 1


def test_importing_the_asgi_module_starts_no_thread_and_reads_no_database(tmp_path):
    script = textwrap.dedent(
        """
        import threading
        import django.db
        import eldric_cloud.asgi as asgi
        assert [t.name for t in threading.enumerate()] == ["MainThread"], threading.enumerate()
        assert django.db.connection.connection is None, "the database was opened at import"
        assert not asgi.gateway.ready
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ELDRIC_", "DATABASE_URL", "REDIS_URL"))}
    env.update(ELDRIC_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="eldric_cloud.settings")
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
