"""Run the real ``eldric-cloudd`` command as a child process, as an operator would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.fakes.server import free_port

BIN = Path(sys.executable).parent


class GatewayProcess:
    def __init__(
        self, *args: str, data_dir: str | None = None, env: dict[str, str] | None = None, worker: bool = False
    ) -> None:
        self.port = free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="eldric-test-")
        self.log_path = Path(self.data_dir) / f"eldric-cloudd-{self.port}.log"
        self.args = [str(BIN / "eldric-cloudd"), "--port", str(self.port), "--host", "127.0.0.1", *args]
        if not worker:
            self.args.append("--no-worker")
        self.env = {
            **os.environ,
            "ELDRIC_DATA_DIR": self.data_dir,
            "ELDRIC_SNAPSHOT_POLL_SECONDS": "0.2",
            **(env or {}),
        }
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> GatewayProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"eldric-cloudd exited with {self.process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"eldric-cloudd did not answer /health within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)

    def wait_for(self, predicate, timeout: float = 15, interval: float = 0.2):
        """Poll until ``predicate()`` is truthy; return its value or fail with the logs."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"condition not met within {timeout}s (last: {last!r})\n--- logs ---\n{self.logs()}")

    def stop(self, timeout: float = 15) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run eldric-cloudd to completion (for flags that make it exit)."""
    data_dir = tempfile.mkdtemp(prefix="eldric-test-")
    return subprocess.run(
        [str(BIN / "eldric-cloudd"), *args],
        check=False,
        env={**os.environ, "ELDRIC_DATA_DIR": data_dir, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
