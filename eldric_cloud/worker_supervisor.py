"""The embedded Celery worker's process, watched by ``eldric-cloudd`` and started again when it
dies: health probes, discovery and retention run there, and a gateway whose worker has gone
would serve on with none of them and nothing in the log to say so."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

from django.conf import settings

logger = logging.getLogger("eldric_cloud")

# Seconds before each restart in a row; a worker that ran this long has its count reset.
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
STEADY_SECONDS = 60.0


class EmbeddedWorker:
    """Runs ``eldric_cloud.embedded_worker`` (the thread pool, with beat on a thread) on the
    configured broker, filesystem by default, and restarts it when it exits unasked."""

    def __init__(self, command: list[str], restart_delays: tuple[float, ...] = RESTART_DELAYS):
        self.command = command
        self.restart_delays = restart_delays
        self.process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @classmethod
    def from_settings(cls) -> EmbeddedWorker:
        return cls(
            [
                sys.executable,
                "-m",
                "eldric_cloud.embedded_worker",
                "--concurrency",
                str(settings.ELDRIC_WORKER_CONCURRENCY),
                "--schedule",
                settings.CELERY_BEAT_SCHEDULE_FILENAME,
                "--hostname",
                f"eldric-{settings.ELDRIC_INSTANCE}-{os.getpid()}@%h",
                "--parent-pid",
                str(os.getpid()),
            ]
        )

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="embedded-worker-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        logger.info("embedded Celery worker stopped")

    def _spawn(self) -> None:
        # Its own session: a Ctrl-C in the terminal reaches eldric-cloudd only, which drains and
        # then stops it. It asks for SIGTERM itself if eldric-cloudd dies without cleaning up
        # (``--parent-pid``): a preexec_fn would not be safe from the watching thread.
        self.process = subprocess.Popen(self.command, env=os.environ.copy(), start_new_session=True)
        logger.info(
            "embedded Celery worker started (pid %s, broker %s)",
            self.process.pid,
            "redis" if settings.REDIS_URL else f"filesystem at {settings.BROKER_DIR}",
        )

    def _watch(self) -> None:
        in_a_row = 0
        started = time.monotonic()
        while not self._stopping.is_set():
            try:
                code = self.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= STEADY_SECONDS:
                in_a_row = 0
            delay = self.restart_delays[min(in_a_row, len(self.restart_delays) - 1)]
            logger.error(
                "embedded Celery worker (pid %s) exited with status %s; starting it again in %g s",
                self.process.pid,
                code,
                delay,
            )
            if self._stopping.wait(delay):
                return
            in_a_row += 1
            started = time.monotonic()
            self._spawn()
