"""``eldric-cloudd`` run for real as a subprocess, with its output captured to a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.fakes.server import free_port

CLI = Path(sys.executable).with_name("eldric-cloudd")
# Variables a developer's shell may carry that would make a run depend on the machine.
SCRUBBED_PREFIXES = ("ELDRIC_", "DATABASE_URL", "REDIS_URL")


def write_config(path: Path, config: dict) -> None:
    """Write in place (same inode), the way most editors and config tools do."""
    path.write_text(json.dumps(config, indent=2))


class Daemon:
    def __init__(
        self,
        tmp_path: Path,
        *,
        config: Path | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        server: str = "daphne",
        data_dir: Path | None = None,
        name: str = "daemon",
    ) -> None:
        self.port = free_port()
        self.data_dir = data_dir or tmp_path / "data"
        self.log_path = tmp_path / f"{name}.log"
        self.command = [str(CLI), "--no-worker", "--host", "127.0.0.1", "--port", str(self.port)]
        self.command += ["--data-dir", str(self.data_dir), "--server", server]
        if config is not None:
            self.command += ["--config", str(config)]
        self.command += list(args)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
        self.env.update({"ELDRIC_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", **(env or {})})
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Daemon:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"eldric-cloudd exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code < 600:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"eldric-cloudd did not start within {timeout}s:\n{self.log()}")

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def sighup(self) -> None:
        self.process.send_signal(signal.SIGHUP)

    def log(self) -> str:
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30), **kwargs)

    def models(self) -> dict[str, str]:
        """Model id -> the backend that owns its catalogue entry (the best priority)."""
        body = httpx.get(self.url + "/v1/models", timeout=5).json()
        return {m["id"]: m["owned_by"] for m in body["data"]}

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"eldric-cloudd died while waiting for {what}:\n{self.log()}")
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n--- daemon log ---\n{self.log()}")

    def wait_for_log(self, text: str, timeout: float = 10, *, after: int = 0) -> str:
        """Wait until ``text`` appears in the log past offset ``after``; return the matching line."""

        def found() -> bool:
            return text in self.log()[after:]

        self.wait_for(found, f"log line {text!r}", timeout)
        tail = self.log()[after:]
        return next(line for line in tail.splitlines() if text in line)
