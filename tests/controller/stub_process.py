"""The real ``eldric-controller-stub`` console script as a process, for tests that need a
controller to register with (or to kill)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

SCRIPT = Path(sys.executable).with_name("eldric-controller-stub")


@dataclass
class StubController:
    process: subprocess.Popen
    url: str
    secret: str = ""

    def client(self) -> httpx.Client:
        """A client for its API (``GET /api/v1/workers``), with the cluster secret if any."""
        headers = {"X-Eldric-Cluster-Secret": self.secret} if self.secret else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def workers(self) -> dict[str, dict]:
        """worker id -> the worker as the stub lists it."""
        with self.client() as http:
            return {worker["worker_id"]: worker for worker in http.get("/api/v1/workers").json()["data"]}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def stub_controller_start(*args: str, secret: str = "") -> StubController:
    """Started on a free port (``--port 0``); its first line of output names its URL."""
    env = {**os.environ, "ELDRIC_CLUSTER_SECRET": secret} if secret else None
    process = subprocess.Popen(
        [str(SCRIPT), "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    return StubController(process, process.stdout.readline().rsplit(" ", 1)[1].strip(), secret)
