"""The reference controller over HTTP: in-process on 127.0.0.1, and as the console script."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from eldric_cloud.controller.protocol import models_hash

SCRIPT = Path(sys.executable).with_name("eldric-controller-stub")


def registration(worker_id: str = "cld-abcd0001", models=("m1",)) -> dict:
    return {
        "protocol_version": 1,
        "worker_id": worker_id,
        "worker_type": "cloud",
        "url": "http://gw:8889",
        "host": "gw",
        "port": 8889,
        "status": "healthy",
        "models_hash": models_hash(models),
        "models": list(models),
    }


async def test_a_silent_worker_is_listed_offline_after_the_timeout(stub):
    server = await stub(offline_after=0.3)
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.put("/api/v1/workers/cld-abcd0001", json=registration())).status_code == 201
        listed = (await http.get("/api/v1/workers")).json()
        assert listed["object"] == "list"
        assert [(w["worker_id"], w["status"]) for w in listed["data"]] == [("cld-abcd0001", "online")]

        async def status() -> str:
            return (await http.get("/api/v1/workers/cld-abcd0001")).json()["status"]

        deadline = time.monotonic() + 10
        while await status() != "offline":
            assert time.monotonic() < deadline, "never went offline"
            await asyncio.sleep(0.05)
        assert (await http.get("/api/v1/workers", params={"status": "online"})).json()["data"] == []

        hash_only = {k: v for k, v in registration().items() if k != "models"}
        assert (await http.put("/api/v1/workers/cld-abcd0001", json=hash_only)).status_code == 200
        assert await status() == "online"


async def test_the_secret_is_required_in_either_case(stub):
    server = await stub(secret="cluster-s3cret")
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.put("/api/v1/workers/cld-abcd0001", json=registration())
        wrong = await http.get("/api/v1/workers", headers={"X-Eldric-Cluster-Secret": "cluster-s3creT"})
        upper = await http.put(
            "/api/v1/workers/cld-abcd0001", json=registration(), headers={"X-Eldric-Cluster-Secret": "cluster-s3cret"}
        )
        lower = await http.get("/api/v1/workers", headers={"x-eldric-cluster-secret": "cluster-s3cret"})
        health = await http.get("/health")  # the stub's own liveness needs no secret

    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_cluster_secret"
    assert "cluster-s3cret" not in refused.text
    assert wrong.status_code == 401
    assert upper.status_code == 201
    assert lower.status_code == 200
    assert [w["worker_id"] for w in lower.json()["data"]] == ["cld-abcd0001"]
    assert health.json() == {"status": "ok", "workers": 1, "online": 1}


async def test_nothing_a_client_sends_gives_a_500(stub):
    server = await stub()
    async with httpx.AsyncClient(base_url=server.url) as http:
        answers = {
            "not json": await http.put("/api/v1/workers/cld-abcd0001", content=b"{nope"),
            "not utf-8": await http.put("/api/v1/workers/cld-abcd0001", content=b"\xff\xfe"),
            "a list": await http.put("/api/v1/workers/cld-abcd0001", json=[1]),
            "id mismatch": await http.put("/api/v1/workers/cld-abcd0002", json=registration()),
            "too large": await http.put("/api/v1/workers/cld-abcd0001", content=b"x" * (9 * 1024 * 1024)),
            "unknown delete": await http.delete("/api/v1/workers/cld-abcd0001"),
            "unknown get": await http.get("/api/v1/workers/cld-abcd0001"),
            "wrong method": await http.post("/api/v1/workers"),
            "unknown path": await http.get("/nothing"),
        }

    statuses = {what: answer.status_code for what, answer in answers.items()}
    assert statuses == {
        "not json": 400,
        "not utf-8": 400,
        "a list": 400,
        "id mismatch": 400,
        "too large": 413,
        "unknown delete": 404,
        "unknown get": 404,
        "wrong method": 405,
        "unknown path": 404,
    }
    for answer in answers.values():
        error = answer.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
    assert answers["id mismatch"].json()["error"]["param"] == "worker_id"


def test_the_console_script_serves_the_protocol_and_stops_on_sigterm():
    assert SCRIPT.exists(), "pip install -e . installs eldric-controller-stub"
    process = subprocess.Popen(
        [str(SCRIPT), "--port", "0", "--offline-after", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ELDRIC_CLUSTER_SECRET": "script-secret"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("eldric-controller-stub: listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        headers = {"X-Eldric-Cluster-Secret": "script-secret"}
        with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
            assert http.put("/api/v1/workers/cld-abcd0001", json=registration()).status_code == 201
            deadline = time.monotonic() + 10
            while http.get("/api/v1/workers/cld-abcd0001").json()["status"] != "offline":
                assert time.monotonic() < deadline, "never went offline"
                time.sleep(0.05)
            assert http.get("/api/v1/workers", headers={"X-Eldric-Cluster-Secret": ""}).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "cld-abcd0001 offline" in stderr
    assert "script-secret" not in stderr
