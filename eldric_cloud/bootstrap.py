"""What ``eldric-cloudd`` does between parsing its flags and serving requests."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.core.management import call_command
from django.db import connection

from eldric_cloud.startup import ConfigError

logger = logging.getLogger("eldric_cloud")


@dataclass(frozen=True)
class StartupState:
    worker_id: str
    backends: list[str]
    models: int


def database_description() -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"SQLite at {db['NAME']}"
    return f"{connection.vendor} database {db.get('NAME')} on {db.get('HOST') or 'localhost'}:{db.get('PORT') or ''}"


def prepare(options) -> StartupState:
    from backends import selectors
    from backends.services import (
        backend_discover,
        backends_static_apply,
        gateway_settings_update,
        worker_identity_ensure,
    )

    call_command("migrate", interactive=False, verbosity=0)
    if not settings.ELDRIC_ENCRYPTION_KEYS and connection.vendor != "sqlite":
        logger.warning(
            "ELDRIC_ENCRYPTION_KEY is not set: upstream keys are encrypted with %s, which other instances "
            "sharing this database cannot read. Set the same ELDRIC_ENCRYPTION_KEY on every instance.",
            settings.ELDRIC_ENCRYPTION_KEY_FILE,
        )
    worker_id = worker_identity_ensure(instance=settings.ELDRIC_INSTANCE)
    from backends.api_auth import admin_token_banner
    from backends.services import admin_token_ensure

    if admin_token := admin_token_ensure():
        print(admin_token_banner(admin_token), flush=True)  # once, on stdout; only its hash is kept
    diff = backends_static_apply(specs=options.backends)
    if diff.removed:
        logger.info("static backends no longer configured, removed: %s", ", ".join(diff.removed))
    names = selectors.backend_names()
    if not names:
        logger.warning("no backends configured: pass --backends or --config, or add one with POST /api/v1/backends")
    default = options.default_backend or (options.backends[0].name if options.backends else "")
    if options.default_backend and options.default_backend not in names:
        raise ConfigError(
            f"--default-backend: {options.default_backend!r} is not a configured backend "
            f"(known: {', '.join(names) or 'none'})"
        )
    gateway_settings_update(
        default_backend=default, health_interval_ms=options.health_interval_ms, controller_url=options.controller_url
    )

    enabled = selectors.backends_enabled()
    with ThreadPoolExecutor(max_workers=min(8, len(enabled) or 1)) as pool:
        results = list(pool.map(lambda item: (item[1], backend_discover(backend_id=item[0])), enabled))
    for name, result in results:
        if result is None:
            continue
        if result.status == "healthy":
            logger.info("backend %s: %s, %d models, %s ms", name, result.status, len(result.models), result.latency_ms)
        else:
            logger.warning("backend %s: %s (%s)", name, result.status, result.error)
    models = selectors.model_count()
    logger.info(
        "worker %s: %d backends (%s), %d models, default backend %s, %s",
        worker_id,
        len(names),
        ", ".join(names) or "none",
        models,
        default or "none",
        database_description(),
    )
    return StartupState(worker_id=worker_id, backends=names, models=models)


def _die_with_parent() -> None:
    # Linux: the worker gets SIGTERM if eldric-cloudd dies without cleaning up.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_embedded_worker() -> subprocess.Popen:
    """Celery worker with embedded beat, on the configured broker (filesystem by default)."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "eldric_cloud",
        "--quiet",  # no start-up banner in eldric-cloudd's log
        "worker",
        "-B",
        "--pool",
        "threads",
        "--concurrency",
        str(settings.ELDRIC_WORKER_CONCURRENCY),
        "--loglevel",
        "WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-s",
        settings.CELERY_BEAT_SCHEDULE_FILENAME,
        "-n",
        f"eldric-{settings.ELDRIC_INSTANCE}-{os.getpid()}@%h",
    ]
    # No threads run at this point (discovery's pool has finished), so preexec_fn is safe.
    process = subprocess.Popen(command, env=os.environ.copy(), preexec_fn=_die_with_parent)  # noqa: PLW1509
    logger.info(
        "embedded Celery worker started (pid %s, broker %s)",
        process.pid,
        "redis" if settings.REDIS_URL else f"filesystem at {settings.BROKER_DIR}",
    )
    return process


def stop_embedded_worker(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    logger.info("embedded Celery worker stopped")


def serve(options, state: StartupState, reloader=None) -> None:
    logger.info("listening on http://%s:%s (%s)", options.host, options.port, options.server)
    if reloader is not None:
        # Started here, after the embedded worker's fork: no thread may run before that.
        # Neither Twisted nor uvicorn handles SIGHUP; installing it again costs nothing.
        reloader.watch()
        reloader.install_sighup()
    if options.server == "uvicorn":
        import uvicorn

        uvicorn.run(
            "eldric_cloud.asgi:application",
            host=options.host,
            port=options.port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        return
    from daphne.cli import CommandLineInterface  # installs Twisted's asyncio reactor first
    from twisted.internet import defer, reactor

    from gateway.http import close_client

    # Daphne has no lifespan events: close the upstream client when the reactor stops.
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: defer.Deferred.fromFuture(asyncio.ensure_future(close_client()))
    )
    if reloader is not None:
        # Again once the reactor runs, so ours wins over anything installed at start-up.
        reactor.callWhenRunning(reloader.install_sighup)
    # -v 0: no per-request access log on the hot path.
    CommandLineInterface().run(
        ["-v", "0", "-b", options.host, "-p", str(options.port), "eldric_cloud.asgi:application"]
    )
