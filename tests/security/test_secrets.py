"""Raw upstream keys never leave the process in readable form.

One real ``eldric-cloudd`` run with failing upstreams (401, an upstream that echoes the key
back, connection refused), a hot reload that changes a key and a broken reload, then the
keys are looked for in everything a person could read: the captured stdout/stderr, every
response sent to clients, the management API, and every byte in the data directory
(SQLite database, its -wal and -shm files).
"""

from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from aiohttp import web

from tests.cli_process import GatewayProcess, write_config
from tests.fakes import recordings
from tests.fakes.server import free_port, openai_models, reply_bytes, reply_json, reply_stream

USER = [{"role": "user", "content": "What is 4200 + 42?"}]
ADMIN_TOKEN = "adm-" + secrets.token_hex(16)


def new_key(label: str) -> str:
    return f"sk-{label}-{secrets.token_hex(20)}"


def echo_the_key():
    """An upstream that quotes the caller's key back in its errors, as some providers do."""

    async def behaviour(request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        model = (json.loads(await request.read() or b"{}")).get("model", "")
        if model == "m-echo-text":
            return web.Response(status=500, text=f"upstream exploded while using key {key}")
        status = 500 if model == "m-echo-500" else 401
        message = f"Incorrect API key provided: {key}. You can find your API key at https://example.invalid."
        return web.json_response(
            {"error": {"message": message, "type": "invalid_request_error", "code": "invalid_api_key"}}, status=status
        )

    return behaviour


def echo_on_models():
    async def behaviour(request: web.Request) -> web.Response:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return web.json_response({"error": {"message": f"key {key} is revoked", "type": "auth"}}, status=401)

    return behaviour


def files_containing(root: Path, needles: list[str]) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits = [n for n in needles if n.encode() in data]
            if hits:
                found[str(path)] = hits
    return found


def leaked(text: str, keys: list[str]) -> list[str]:
    return [k for k in keys if k in text]


@pytest.fixture
def keys() -> dict[str, str]:
    return {label: new_key(label) for label in ("good", "good2", "denied", "echo", "probe", "env", "refused", "flag")}


@pytest.fixture
def upstreams(fake_provider) -> SimpleNamespace:
    good = fake_provider("good")
    good.on("GET", "/v1/models", openai_models("m-good"))
    good.on("POST", "/v1/chat/completions", reply_bytes(recordings.response("openai", "chat_text")))
    stream_fake = fake_provider("flagged")
    stream_fake.on("GET", "/v1/models", openai_models("m-stream"))
    stream_fake.on(
        "POST",
        "/v1/chat/completions",
        reply_stream(recordings.sse_frames(recordings.response("openai", "chat_stream_text"))),
    )
    denied = fake_provider("denied")
    denied.on("GET", "/v1/models", openai_models("m-denied"))
    denied.on(
        "POST",
        "/v1/chat/completions",
        reply_json(
            {"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error"}},
            status=401,
        ),
    )
    echo = fake_provider("echo")
    echo.on("GET", "/v1/models", openai_models("m-echo-401", "m-echo-500", "m-echo-text"))
    echo.on("POST", "/v1/chat/completions", echo_the_key())
    probe = fake_provider("probe")
    probe.on("GET", "/v1/models", echo_on_models())
    gone = fake_provider("gone")
    gone.on("GET", "/v1/models", openai_models("m-gone"))
    return SimpleNamespace(good=good, stream=stream_fake, denied=denied, echo=echo, probe=probe, gone=gone)


def call_everything(daemon: GatewayProcess, keys: dict[str, str]) -> list[str]:
    """Every kind of client call, successful and failing; returns what clients saw."""
    responses: list[str] = []
    with daemon.client() as client:

        def chat(model: str, **extra) -> httpx.Response:
            response = client.post("/v1/chat/completions", json={"model": model, "messages": USER, **extra})
            responses.append(f"{response.status_code} {response.headers} {response.text}")
            return response

        assert chat("m-good").status_code == 200
        assert chat("m-stream", stream=True).status_code == 200
        assert chat("m-denied").status_code == 401
        echoed = chat("m-echo-401")
        assert echoed.status_code == 401
        assert "[redacted]" in echoed.json()["error"]["message"]
        assert chat("m-echo-401", stream=True).status_code == 401
        assert chat("m-echo-500").status_code >= 500
        assert chat("m-echo-text").status_code >= 500
        assert chat("m-gone").status_code == 502
        assert chat("no-such-model").status_code in (200, 404, 502, 503)
        for path in ("/v1/models", "/health", "/v1/models/m-good"):
            got = client.get(path)
            responses.append(f"{got.status_code} {got.text}")

        # The management API, with the admin token (401 is accepted until auth lands,
        # but the keys must be absent either way).
        for headers in ({"Authorization": f"Bearer {ADMIN_TOKEN}"}, {}):
            api = client.get("/api/v1/backends", headers=headers)
            assert api.status_code in (200, 401, 403)
            responses.append(f"{api.status_code} {api.headers} {api.text}")
            if headers and api.status_code == 200:
                listed = {b["name"]: b for b in api.json()["data"]}
                assert listed["echo"]["api_key"].endswith(keys["echo"][-4:])
                assert listed["probe"]["health_status"] == "auth_failed"
                assert "[redacted]" in listed["probe"]["last_error"]
    return responses


def reload_with_a_new_key_then_a_broken_file(daemon: GatewayProcess, config: Path, backends, keys, good) -> str:
    """A reload that changes a key logs the name only; a broken file that quotes a
    (mistyped, numeric) key is rejected without echoing it. Returns that numeric "key"."""
    mark = len(daemon.logs())
    backends[0]["api_key"] = keys["good2"]
    write_config(config, {"default_backend": "good", "backends": backends})
    assert "changed good" in daemon.wait_for_log("config reload (file changed)", after=mark)

    def new_key_used() -> bool:
        httpx.post(daemon.url + "/v1/chat/completions", json={"model": "m-good", "messages": USER}, timeout=10)
        return good.requests_to("/v1/chat/completions")[-1].headers["Authorization"] == f"Bearer {keys['good2']}"

    daemon.wait_for(new_key_used, "the new key to be used")
    numeric_key = int("9" + "".join(secrets.choice("0123456789") for _ in range(17)))
    mark = len(daemon.logs())
    broken = [dict(backends[0], api_key=numeric_key), *backends[1:]]
    config.write_text(json.dumps({"backends": broken}))
    line = daemon.wait_for_log("rejected", after=mark)
    assert "backends[0].api_key: expected a string" in line
    return str(numeric_key)


def test_raw_keys_appear_in_no_log_response_api_or_database_file(tmp_path, upstreams, keys):
    up = upstreams
    good, stream_fake, echo, gone = up.good, up.stream, up.echo, up.gone

    def entry(fake, key_label: str | None, **extra) -> dict:
        item = {"name": fake.name, "url": fake.url + "/v1", **extra}
        if key_label:
            item["api_key"] = keys[key_label]
        return item

    backends = [
        entry(good, "good"),
        entry(up.denied, "denied"),
        entry(echo, "echo"),
        entry(up.probe, "probe"),
        entry(gone, None),  # its key comes from GONE_API_KEY
        {"name": "refused", "url": f"http://127.0.0.1:{free_port()}/v1", "api_key": keys["refused"]},
    ]
    config = tmp_path / "eldric.json"
    write_config(config, {"default_backend": "good", "backends": backends})
    daemon = GatewayProcess(
        "--backends",
        f"flagged:{stream_fake.url}/v1:{keys['flag']}",
        data_dir=tmp_path / "data",
        config=config,
        env={"ELDRIC_ADMIN_TOKEN": ADMIN_TOKEN, "GONE_API_KEY": keys["env"]},
    )
    daemon.start()
    all_keys = list(keys.values())
    responses: list[str] = []
    try:
        gone.stop()  # discovered while up; now connections are refused
        responses += call_everything(daemon, keys)

        # The gateway really sent the keys upstream: the checks above are not vacuous.
        assert good.requests_to("/v1/chat/completions")[-1].headers["Authorization"] == f"Bearer {keys['good']}"
        assert any(r.headers.get("Authorization") == f"Bearer {keys['echo']}" for r in echo.received)
        assert any(r.headers.get("Authorization") == f"Bearer {keys['env']}" for r in gone.received)
        assert any(r.headers.get("Authorization") == f"Bearer {keys['flag']}" for r in stream_fake.received)

        all_keys.append(reload_with_a_new_key_then_a_broken_file(daemon, config, backends, keys, good))

        # While running, the WAL file holds the recent writes.
        wal = daemon.data_dir / "eldric.sqlite3-wal"
        assert wal.exists()
        assert files_containing(daemon.data_dir, all_keys) == {}
    finally:
        daemon.stop()

    assert files_containing(daemon.data_dir, all_keys) == {}
    database = (daemon.data_dir / "eldric.sqlite3").read_bytes()
    assert b"gAAAAA" in database  # Fernet tokens are there; the raw keys are not
    log = daemon.logs()
    assert "backend probe" in log  # the failing probe was logged...
    assert "backend echo failed" in log  # ...and so was the failing upstream call
    assert leaked(log, all_keys) == []
    assert leaked("\n".join(responses), all_keys) == []


def test_generated_secrets_in_the_data_dir_are_private(tmp_path, fake_provider):
    fake = fake_provider("alpha")
    fake.on("GET", "/v1/models", openai_models("m-alpha"))
    daemon = GatewayProcess("--backends", f"alpha:{fake.url}/v1:{new_key('alpha')}", data_dir=tmp_path / "data")
    daemon.start()
    daemon.stop()
    for name in ("encryption.key", "secret_key"):
        mode = stat.S_IMODE((daemon.data_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
