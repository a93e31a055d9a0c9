"""ConfigReloader in-process: merging with flags, validation, atomicity, what gets logged."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

import pytest

from backends.models import Backend, WorkerIdentity
from backends.selectors import routing_version_get
from eldric_cloud.cli import build_parser, parse_options
from eldric_cloud.reload import ConfigReloader

FLAG_KEY = "sk-flag-00112233445566778899"


def entry(name: str, port: int, **extra) -> dict:
    return {"name": name, "url": f"http://127.0.0.1:{port}/v1", **extra}


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "eldric.json"

    def write(data) -> str:
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        return str(path)

    write({"backends": [entry("alpha", 9001, api_key="sk-alpha-aaaa1111")]})
    write.path = str(path)
    return write


def reloader_for(argv: list[str]) -> ConfigReloader:
    return ConfigReloader(parse_options(argv), build_parser().parse_args(argv), discover=False)


def backends() -> dict[str, Backend]:
    return {b.name: b for b in Backend.objects.all()}


@pytest.mark.django_db
def test_flags_still_override_the_file_and_flag_backends_survive_reloads(config):
    argv = ["--config", config.path, "--backends", f"flagged:http://127.0.0.1:9009/v1:{FLAG_KEY}"]
    reloader = reloader_for(argv)
    assert reloader.reload().added == ["alpha", "flagged"]

    # The file now also defines "flagged" (another URL) and drops alpha.
    config({"backends": [entry("flagged", 9999, api_key="sk-other-key-0000"), entry("bravo", 9002)]})
    result = reloader.reload()
    assert result.added == ["bravo"]
    assert result.removed == ["alpha"]
    assert "flagged" not in result.changed
    flagged = backends()["flagged"]
    assert flagged.url == "http://127.0.0.1:9009/v1"
    assert flagged.api_key == FLAG_KEY

    config({"backends": []})
    assert reloader.reload().removed == ["bravo"]
    assert set(backends()) == {"flagged"}


@pytest.mark.django_db
def test_changes_to_default_backend_and_health_interval_reach_the_instance_settings(config, caplog):
    reloader = reloader_for(["--config", config.path])
    reloader.reload()
    version = routing_version_get()

    config(
        {
            "default_backend": "bravo",
            "health_check_interval_ms": 5000,
            "backends": [entry("alpha", 9001, api_key="sk-alpha-aaaa1111"), entry("bravo", 9002)],
        }
    )
    caplog.set_level(logging.INFO, logger="eldric_cloud.reload")
    caplog.clear()
    result = reloader.reload("test")
    row = WorkerIdentity.objects.get(instance="default")  # this instance's own row
    assert (row.default_backend, row.health_interval_ms) == ("bravo", 5000)
    assert routing_version_get() > version
    assert result.settings == ["default backend alpha -> bravo", "health interval (ms) 60000 -> 5000"]
    [record] = [r for r in caplog.records if r.name == "eldric_cloud.reload"]
    assert record.getMessage().endswith(
        "added bravo; default backend alpha -> bravo; health interval (ms) 60000 -> 5000"
    )

    # The same file again: nothing to do, and the routing version stays put.
    version = routing_version_get()
    caplog.clear()
    assert reloader.reload("test").ok
    assert routing_version_get() == version
    assert caplog.records[-1].getMessage().endswith(": no changes")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ({"backends": [], "extra": 1}, "extra: unknown key"),
        ({"backends": [{"name": "alpha", "url": "http://127.0.0.1:1/v1", "enabled": "yes"}]}, "enabled: expected"),
        ({"backends": [{"name": "bad name!", "url": "http://127.0.0.1:1/v1"}]}, "name: backend name"),
        ({"backends": [{"name": "alpha", "url": "ftp://x"}]}, "url: url 'ftp://x'"),
        ({"health_check_interval_ms": 5, "backends": []}, "must be at least 100"),
        ({"default_backend": "ghost", "backends": [entry("new", 9003)]}, "'ghost' is not a configured backend"),
    ],
)
def test_a_broken_file_changes_nothing_and_logs_one_error(config, caplog, content, expected):
    reloader = reloader_for(["--config", config.path])
    reloader.reload()
    before = {name: (b.url, b.priority, b.api_key_encrypted) for name, b in backends().items()}
    version = routing_version_get()

    config(content)
    caplog.clear()
    caplog.set_level(logging.INFO)
    result = reloader.reload("test")

    assert not result.ok
    assert expected in result.error
    assert {name: (b.url, b.priority, b.api_key_encrypted) for name, b in backends().items()} == before
    assert routing_version_get() == version
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    message = errors[0].getMessage()
    assert message.startswith("config reload (test) rejected, keeping the running config: ")
    assert config.path in message
    assert expected in message
    assert errors[0].exc_info is None  # one line, no traceback


@pytest.mark.django_db
def test_a_mistyped_key_is_not_quoted_in_the_rejection(config, caplog):
    reloader = reloader_for(["--config", config.path])
    config({"backends": [{"name": "alpha", "url": "http://127.0.0.1:1/v1", "api_key": 123456789012345678}]})
    result = reloader.reload()
    assert "backends[0].api_key: expected a string, got int" in result.error
    assert "123456789012345678" not in caplog.text


@pytest.mark.django_db
def test_a_removed_file_keeps_the_running_config(config, caplog):
    reloader = reloader_for(["--config", config.path])
    reloader.reload()
    os.unlink(config.path)
    result = reloader.reload()
    assert not result.ok
    assert "cannot read" in result.error
    assert set(backends()) == {"alpha"}


@pytest.mark.django_db
def test_the_port_cannot_change_without_a_restart(config, caplog):
    reloader = reloader_for(["--config", config.path, "--port", "8890"])
    config({"port": 9999, "backends": []})
    caplog.set_level(logging.INFO)
    assert reloader.reload().ok
    assert "takes a restart" not in caplog.text  # --port was given: it wins anyway

    reloader = reloader_for(["--config", config.path])  # listening on the file's 9999
    reloader.reload()
    assert "takes a restart" not in caplog.text
    config({"port": 9000, "backends": []})
    reloader.reload()
    assert "port 9000 takes a restart; still listening on 9999" in caplog.text


def test_sighup_wakes_the_watcher_which_reloads_off_the_signal_handler(caplog):
    # No --config and no database: the watcher only reports there is nothing to reload.
    reloader = reloader_for([])
    caplog.set_level(logging.INFO, logger="eldric_cloud.reload")
    previous = signal.getsignal(signal.SIGHUP)
    try:
        assert reloader.install_sighup()
        reloader.watch()
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "nothing to reload" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "config reload (SIGHUP): no --config file was given; nothing to reload" in caplog.text
        record = next(r for r in caplog.records if "nothing to reload" in r.getMessage())
        assert record.threadName == "config-reload"
    finally:
        reloader.stop()
        signal.signal(signal.SIGHUP, previous)


class _SignalJustAfterTimeout(threading.Event):
    """The watcher's wake event, with a SIGHUP landing right after its first wait timed out:
    the window a reload racing a file change used to fall into."""

    def __init__(self) -> None:
        super().__init__()
        self._fired = False

    def wait(self, timeout=None) -> bool:
        woke = super().wait(timeout)
        if not woke and not self._fired:
            self._fired = True
            self.set()
        return woke


def test_a_sighup_landing_as_the_watcher_times_out_still_reloads(caplog):
    reloader = reloader_for([])
    reloader.poll_seconds = 0.05
    reloader._wake = _SignalJustAfterTimeout()
    caplog.set_level(logging.INFO, logger="eldric_cloud.reload")
    try:
        reloader.watch()
        deadline = time.monotonic() + 5
        while "nothing to reload" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "config reload (SIGHUP)" in caplog.text
    finally:
        reloader.stop()


@pytest.mark.django_db
def test_a_changed_controller_url_is_stored_and_logged_without_its_credentials(config, caplog):
    reloader = reloader_for(["--config", config.path])
    reloader.reload()
    config({"controller_url": "http://ops:pa55word@127.0.0.1:8880", "backends": [entry("alpha", 9001)]})
    caplog.set_level(logging.INFO)

    result = reloader.reload("test")

    assert WorkerIdentity.objects.get(instance="default").controller_url == "http://ops:pa55word@127.0.0.1:8880"
    assert result.settings == ["controller url none -> http://127.0.0.1:8880"]
    assert "pa55word" not in caplog.text
