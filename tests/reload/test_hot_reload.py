"""Config hot reload through the real ``eldric-cloudd`` process: file changes and SIGHUP."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.cli_process import GatewayProcess, write_config, write_config_unnoticed
from tests.fakes import recordings
from tests.fakes.server import openai_models, reply_bytes, reply_stream

USER = [{"role": "user", "content": "What is 4200 + 42?"}]


@pytest.fixture
def daemons(tmp_path):
    started: list[GatewayProcess] = []

    def make(*, args: tuple[str, ...] = (), **kwargs) -> GatewayProcess:
        kwargs.setdefault("data_dir", tmp_path / "data")
        daemon = GatewayProcess(*args, **kwargs).start()
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        daemon.stop()


def backend(fake, priority: int, **extra) -> dict:
    return {"name": fake.name, "type": "openai_compatible", "url": fake.url + "/v1", "priority": priority, **extra}


def served_by(fake, *models: str):
    fake.on("GET", "/v1/models", openai_models(*models))
    fake.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    return fake


def test_file_changes_add_change_and_remove_backends_without_restart(tmp_path, fake_provider, daemons):
    alpha = served_by(fake_provider("alpha"), "m-alpha", "shared")
    bravo = served_by(fake_provider("bravo"), "m-bravo", "shared")
    charlie = served_by(fake_provider("charlie"), "m-charlie")
    config = tmp_path / "eldric.json"
    write_config(config, {"backends": [backend(alpha, 1), backend(bravo, 2)]})
    daemon = daemons(config=config)
    pid = daemon.process.pid
    assert daemon.models() == {"m-alpha": "alpha", "shared": "alpha", "m-bravo": "bravo"}

    # Add: discovered at once and routable.
    mark = len(daemon.logs())
    write_config(config, {"backends": [backend(alpha, 1), backend(bravo, 2), backend(charlie, 3)]})
    daemon.wait_for(lambda: "m-charlie" in daemon.models(), "charlie's models")
    assert "added charlie" in daemon.wait_for_log("config reload (file changed)", after=mark)
    with daemon.client() as client:
        answer = client.post("/v1/chat/completions", json={"model": "m-charlie", "messages": USER})
    assert answer.status_code == 200
    assert answer.headers["x-eldric-backend"] == "charlie"

    # Change: alpha drops below bravo for the model they share.
    mark = len(daemon.logs())
    write_config(config, {"backends": [backend(alpha, 5), backend(bravo, 2), backend(charlie, 3)]})
    daemon.wait_for(lambda: daemon.models().get("shared") == "bravo", "bravo to own 'shared'")
    line = daemon.wait_for_log("config reload (file changed)", after=mark)
    assert "changed alpha" in line
    assert "bravo" not in line
    assert "charlie" not in line
    with daemon.client() as client:
        answer = client.post("/v1/chat/completions", json={"model": "shared", "messages": USER})
    assert answer.headers["x-eldric-backend"] == "bravo"

    # Remove: bravo and its models leave routing; the default backend follows the file.
    mark = len(daemon.logs())
    write_config(config, {"default_backend": "charlie", "backends": [backend(alpha, 5), backend(charlie, 3)]})
    daemon.wait_for(lambda: "m-bravo" not in daemon.models(), "bravo's models to go")
    assert daemon.models() == {"m-alpha": "alpha", "shared": "alpha", "m-charlie": "charlie"}
    line = daemon.wait_for_log("config reload (file changed)", after=mark)
    assert "removed bravo" in line
    assert "default backend alpha -> charlie" in line
    with daemon.client() as client:
        gone = client.post("/v1/chat/completions", json={"model": "m-bravo", "messages": USER})
    assert gone.headers.get("x-eldric-backend") != "bravo"

    assert daemon.process.pid == pid
    assert daemon.process.poll() is None
    assert "Traceback" not in daemon.logs()


BROKEN = [
    ('{"backends": [', "not valid JSON"),
    ('{"backends": [], "colour": "blue"}', "colour: unknown key"),
    ('{"backends": [{"name": "alpha", "url": "http://127.0.0.1:1/v1", "priority": "1"}]}', "priority: expected"),
    ('{"default_backend": "nobody", "backends": []}', "'nobody' is not a configured backend"),
]


def test_a_broken_file_is_rejected_with_one_line_and_the_running_config_stays(tmp_path, fake_provider, daemons):
    alpha = served_by(fake_provider("alpha"), "m-alpha")
    config = tmp_path / "eldric.json"
    write_config(config, {"backends": [backend(alpha, 1)]})
    daemon = daemons(config=config)
    before = daemon.models()

    for content, expected in BROKEN:
        mark = len(daemon.logs())
        config.write_text(content)
        line = daemon.wait_for_log("rejected", after=mark)
        assert " ERROR " in line
        assert "keeping the running config" in line
        assert str(config) in line
        assert expected in line
        # One line, no traceback, and nothing changed.
        assert "Traceback" not in daemon.logs()[mark:]
        assert daemon.models() == before
        with daemon.client() as client:
            answer = client.post("/v1/chat/completions", json={"model": "m-alpha", "messages": USER})
        assert answer.status_code == 200

    # A fixed file is picked up again.
    bravo = served_by(fake_provider("bravo"), "m-bravo")
    write_config(config, {"backends": [backend(alpha, 1), backend(bravo, 2)]})
    daemon.wait_for(lambda: "m-bravo" in daemon.models(), "the fixed file to apply")


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_sighup_reloads_and_does_not_stop_the_process(tmp_path, fake_provider, daemons, server):
    alpha = served_by(fake_provider("alpha"), "m-alpha")
    bravo = served_by(fake_provider("bravo"), "m-bravo")
    config = tmp_path / "eldric.json"
    config.write_text(json.dumps({"backends": [backend(alpha, 1)]}).ljust(600))
    daemon = daemons(config=config, server=server)
    assert daemon.models() == {"m-alpha": "alpha"}

    mark = len(daemon.logs())
    write_config_unnoticed(config, {"backends": [backend(alpha, 1), backend(bravo, 2)]})
    daemon.sighup()
    daemon.wait_for(lambda: "m-bravo" in daemon.models(), "bravo after SIGHUP")
    line = daemon.wait_for_log("config reload (SIGHUP)", after=mark)
    if "config reload (file changed)" not in daemon.logs()[mark:]:
        # The watcher did not see the rewrite: SIGHUP alone did it.
        assert "added bravo" in line
    assert daemon.process.poll() is None

    # A second SIGHUP with nothing new changes nothing and still does not stop the process.
    mark = len(daemon.logs())
    daemon.sighup()
    assert "no changes" in daemon.wait_for_log("config reload (SIGHUP)", after=mark)
    assert daemon.process.poll() is None


def test_an_in_flight_stream_keeps_streaming_across_reloads(tmp_path, fake_provider, daemons):
    recorded = recordings.response("openai", "chat_stream_text")
    frames = recordings.sse_frames(recorded)
    release = threading.Event()
    alpha = fake_provider("alpha")
    alpha.on("GET", "/v1/models", openai_models("m-alpha"))
    alpha.on("POST", "/v1/chat/completions", reply_stream(frames, hold_before_last=release, fake=alpha))
    bravo = served_by(fake_provider("bravo"), "m-bravo")
    config = tmp_path / "eldric.json"
    write_config(config, {"backends": [backend(alpha, 1)]})
    daemon = daemons(config=config)

    received: list[bytes] = []
    first_chunk = threading.Event()
    outcome: dict = {}

    def consume() -> None:
        try:
            with (
                httpx.Client(base_url=daemon.url, timeout=60) as client,
                client.stream(
                    "POST",
                    "/v1/chat/completions",
                    json={
                        "model": "m-alpha",
                        "messages": USER,
                        "stream": True,
                        "stream_options": {"include_usage": True},
                    },
                ) as response,
            ):
                outcome["status"] = response.status_code
                outcome["backend"] = response.headers.get("x-eldric-backend")
                for chunk in response.iter_bytes():
                    received.append(chunk)
                    first_chunk.set()
        except Exception as exc:  # reported by the assertions below
            outcome["error"] = repr(exc)
        finally:
            first_chunk.set()

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    assert first_chunk.wait(15), "no chunk arrived"

    # Reload 1: a backend is added and the streaming backend's priority changes.
    write_config(config, {"backends": [backend(alpha, 7), backend(bravo, 2)]})
    daemon.wait_for(lambda: "m-bravo" in daemon.models(), "the first reload")
    # Reload 2: the streaming backend is removed from the config altogether.
    write_config(config, {"backends": [backend(bravo, 2)]})
    daemon.wait_for(lambda: "m-alpha" not in daemon.models(), "the second reload")
    assert consumer.is_alive(), f"the stream ended early: {outcome}"

    release.set()
    consumer.join(15)
    assert not consumer.is_alive()
    assert "error" not in outcome, outcome
    assert outcome["status"] == 200
    assert outcome["backend"] == "alpha"
    assert b"".join(received) == recorded.replace(b"\r\n", b"\n")
    assert alpha.closed_streams == 0
