"""Run the real ``eldric-cloudd`` command as a child process, as an operator would."""

from __future__ import annotations

import json
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
# Variables a developer's shell may carry that would make a run depend on the machine;
# tests pass explicitly what a run needs.
SCRUBBED_PREFIXES = ("ELDRIC_", "DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")


def clean_environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env.update(extra)
    return env


def license_environment() -> dict[str, str]:
    """By default a child process trusts the test session's signing key and installs an
    Enterprise license for the default organisation, so runs are not capped by Free's limits.
    Pass ``ELDRIC_LICENSE_FILE=""`` (or other values) in ``env`` to run under another tier."""
    from tests.licenses.support import session_key

    key = session_key()
    return {"ELDRIC_LICENSE_PUBLIC_KEYS": key.public, "ELDRIC_LICENSE_FILE": str(key.enterprise_file)}


def write_config(path: Path, config: dict) -> None:
    """Write in place (same inode), the way most editors and config tools do."""
    path.write_text(json.dumps(config, indent=2))


def write_config_unnoticed(path: Path, config: dict, width: int = 600) -> None:
    """Rewrite in place with the same size and mtime, so only SIGHUP can announce it."""
    stat = os.stat(path)
    text = json.dumps(config)
    assert len(text) <= width
    with open(path, "r+") as handle:
        handle.write(text.ljust(width))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


class GatewayProcess:
    def __init__(
        self,
        *args: str,
        data_dir: str | Path | None = None,
        env: dict[str, str] | None = None,
        worker: bool = False,
        config: Path | None = None,
        server: str | None = None,
        name: str = "eldric-cloudd",
        port: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="eldric-test-"))
        self.log_path = self.data_dir / f"{name}-{self.port}.log"
        self.args = [str(BIN / "eldric-cloudd"), "--port", str(self.port), "--host", "127.0.0.1", *args]
        if config is not None:
            self.args += ["--config", str(config)]
        if server is not None:
            self.args += ["--server", server]
        if not worker:
            self.args.append("--no-worker")
        self.env = clean_environment(
            **{
                **license_environment(),
                "ELDRIC_DATA_DIR": str(self.data_dir),
                "ELDRIC_SNAPSHOT_POLL_SECONDS": "0.2",
                "ELDRIC_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
                **(env or {}),
            }
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> GatewayProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
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
        return self.log_path.read_bytes().decode(errors="replace") if self.log_path.exists() else ""

    def get(self, path: str, **kwargs) -> httpx.Response:
        return httpx.get(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return httpx.post(self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30), **kwargs)

    def models(self) -> dict[str, str]:
        """Model id -> the backend that owns its catalogue entry (the best priority)."""
        return {m["id"]: m["owned_by"] for m in self.get("/v1/models", timeout=5).json()["data"]}

    def sighup(self) -> None:
        self.process.send_signal(signal.SIGHUP)

    def wait_for(self, predicate, what: str = "condition", timeout: float = 15, interval: float = 0.1):
        """Poll until ``predicate()`` is truthy; return its value or fail with the logs."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"eldric-cloudd died while waiting for {what}:\n{self.logs()}")
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"{what} not met within {timeout}s (last: {last!r})\n--- logs ---\n{self.logs()}")

    def wait_for_log(self, text: str, timeout: float = 10, *, after: int = 0) -> str:
        """Wait until ``text`` appears in the log past offset ``after``; return the matching line."""
        self.wait_for(lambda: text in self.logs()[after:], f"log line {text!r}", timeout)
        return next(line for line in self.logs()[after:].splitlines() if text in line)

    @property
    def pid(self) -> int:
        return self.process.pid

    def memory_kb(self, field: str = "VmRSS") -> int:
        """A memory figure of the server process from /proc (VmRSS now, VmHWM its peak so far)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(f"{field} not in /proc/{self.pid}/status")

    def terminate(self) -> None:
        """SIGTERM only (stop() also waits, then kills)."""
        self.process.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"eldric-cloudd still running after {timeout}s:\n{self.logs()}") from None

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
        env=clean_environment(**{**license_environment(), "ELDRIC_DATA_DIR": data_dir, **(env or {})}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
