"""What ``eldric-cloudd`` does between parsing its flags and serving requests."""

from __future__ import annotations

import logging
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


# Any constant: the key of the PostgreSQL advisory lock taken while migrating.
MIGRATE_LOCK_KEY = 0x656C64726963  # "eldric"


def migrate() -> None:
    """Apply pending migrations. On PostgreSQL, instances starting together take turns:
    concurrent migrate runs would both try to create the same tables."""
    if connection.vendor != "postgresql":
        call_command("migrate", interactive=False, verbosity=0)
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATE_LOCK_KEY])
        try:
            call_command("migrate", interactive=False, verbosity=0)
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATE_LOCK_KEY])


def collect_static() -> None:
    """Copy the apps' static files into ``STATIC_ROOT``, where WhiteNoise serves them from
    (dashboard/static_files.py). Unchanged files are skipped, so a restart copies nothing;
    instances sharing a data directory copy the same bytes to the same names."""
    call_command("collectstatic", interactive=False, verbosity=0)


def prepare(options) -> StartupState:
    from backends.services import worker_heartbeat_clear

    collect_static()
    try:
        return _prepare(options)
    except ConfigError:
        # Registered as live by license_prepare, but not starting after all: stop counting now.
        worker_heartbeat_clear(instance=settings.ELDRIC_INSTANCE)
        raise


def _prepare(options) -> StartupState:
    from backends import selectors
    from backends.models import HealthStatus
    from backends.services import (
        StaticNameConflict,
        backend_discover,
        backends_static_apply,
        instance_settings_update,
        worker_identity_ensure,
    )
    from backends.url_policy import SETTING, url_policy

    migrate()
    if not settings.ELDRIC_ENCRYPTION_KEYS and connection.vendor != "sqlite":
        logger.warning(
            "ELDRIC_ENCRYPTION_KEY is not set: upstream keys are encrypted with %s, which other instances "
            "sharing this database cannot read. Set the same ELDRIC_ENCRYPTION_KEY on every instance.",
            settings.ELDRIC_ENCRYPTION_KEY_FILE,
        )
    worker_id = worker_identity_ensure(instance=settings.ELDRIC_INSTANCE)
    license_prepare(options)
    from backends.api_auth import admin_token_banner
    from backends.services import admin_token_ensure

    if admin_token := admin_token_ensure():
        print(admin_token_banner(admin_token), flush=True)  # once, on stdout; only its hash is kept
    # A static backend whose URL the deny list covers stops start-up, naming the setting.
    try:
        policy = url_policy()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for spec in options.backends:
        if denial := policy.check(spec.url):
            raise ConfigError(f"backend {spec.name!r}: url {spec.url} is not allowed: {denial}; see {SETTING}")
    from orgs.license_gates import LicenseLimit

    instance = settings.ELDRIC_INSTANCE
    try:
        diff = backends_static_apply(specs=options.backends, instance=instance)
    except (LicenseLimit, StaticNameConflict) as exc:
        raise ConfigError(str(exc)) from None
    if diff.removed:
        logger.info("static backends no longer configured, removed: %s", ", ".join(diff.removed))
    # What this instance routes to: its own static backends and the runtime ones it may use.
    names = selectors.backend_names(instance=instance)
    if not names:
        logger.warning("no backends configured: pass --backends or --config, or add one with POST /api/v1/backends")
    default = options.default_backend or (options.backends[0].name if options.backends else "")
    if options.default_backend and options.default_backend not in names:
        raise ConfigError(
            f"--default-backend: {options.default_backend!r} is not a configured backend "
            f"(known: {', '.join(names) or 'none'})"
        )
    instance_settings_update(
        instance=instance,
        default_backend=default,
        health_interval_ms=options.health_interval_ms,
        controller_url=options.controller_url,
    )

    def discover(item: tuple[int, str]):
        backend_id, name = item
        try:
            return name, backend_discover(backend_id=backend_id)
        except Exception:
            # However a backend answers (or the database takes its answer), start-up goes on;
            # the periodic checks try it again.
            logger.exception("backend %s: discovery at start-up failed", name)
            return name, None

    enabled = selectors.backends_enabled(instance=instance)
    with ThreadPoolExecutor(max_workers=min(8, len(enabled) or 1)) as pool:
        results = list(pool.map(discover, enabled))
    for name, result in results:
        if result is None:
            continue
        if result.status == HealthStatus.HEALTHY:
            logger.info("backend %s: %s, %d models, %s ms", name, result.status, len(result.models), result.latency_ms)
        else:
            logger.warning("backend %s: %s (%s)", name, result.status, result.error)
    models = selectors.model_count(instance=instance)
    logger.info(
        "worker %s (instance %s): %d backends (%s), %d models, default backend %s, %s",
        worker_id,
        instance,
        len(names),
        ", ".join(names) or "none",
        models,
        default or "none",
        database_description(),
    )
    return StartupState(worker_id=worker_id, backends=names, models=models)


def license_prepare(options) -> None:
    """Install the license given at start-up, then refuse to start past the license's
    cloud-worker limit. This instance registers its heartbeat before serving, so instances
    starting one after another see each other."""
    from backends.selectors import live_instances_count
    from backends.services import worker_heartbeat
    from orgs.license_files import LicenseInvalid
    from orgs.license_gates import LicenseLimit, instances_check
    from orgs.licenses import license_state_get
    from orgs.services import default_organisation_ensure, license_install_file

    default_organisation_ensure()
    path = getattr(options, "license_path", None) or settings.ELDRIC_LICENSE_FILE
    if path:
        origin = "--license" if getattr(options, "license_path", None) else "ELDRIC_LICENSE_FILE"
        try:
            license_install_file(path=path)
        except LicenseInvalid as exc:
            raise ConfigError(f"{origin} {path}: not a valid license: {exc}") from None
    state = license_state_get()
    try:
        instances_check(state, live_others=live_instances_count(exclude_instance=settings.ELDRIC_INSTANCE))
    except LicenseLimit as exc:
        raise ConfigError(
            f"{exc} Instances count while their heartbeat is under {settings.ELDRIC_INSTANCE_LIVE_SECONDS:g} s "
            "old, one per ELDRIC_INSTANCE name."
        ) from None
    worker_heartbeat(instance=settings.ELDRIC_INSTANCE)
    described = state.describe()
    logger.info(
        "license: %s (%s%s)",
        described["tier"],
        described["status"],
        f", {described['license_id']} expires {described['expires_at']}" if described["license_id"] else "",
    )


def serve(options, state: StartupState, reloader=None) -> int:
    """Serve until SIGTERM/SIGINT has drained the server; returns the exit status."""
    from backends.heartbeat import InstanceHeartbeat

    # Started here, after the embedded worker's fork (see cli.main). Its first
    # beat logs the license warning, if any; later ones repeat it once a day.
    heartbeat = InstanceHeartbeat(instance=settings.ELDRIC_INSTANCE, interval=settings.ELDRIC_HEARTBEAT_SECONDS)
    heartbeat.start()
    try:
        return _serve(options, reloader, heartbeat)
    finally:
        heartbeat.stop()


def _serve(options, reloader, heartbeat) -> int:
    from eldric_cloud.server.limits import ServerLimits
    from eldric_cloud.server.listener import bound_socket

    limits = ServerLimits.from_settings()
    # Bound before the app is imported, so a port in use fails fast; it listens only once serving starts.
    sock = bound_socket(options.host, options.port, reuse_port=options.reuse_port or settings.ELDRIC_REUSE_PORT)
    logger.info("listening on http://%s:%s (%s)", options.host, options.port, options.server)
    if reloader is not None:
        # Started here, after the embedded worker's fork: no thread may run before that.
        # Neither Twisted nor uvicorn handles SIGHUP; installing it again costs nothing.
        reloader.watch()
        reloader.install_sighup()
    from eldric_cloud import asgi
    from eldric_cloud.controller.build import controller_client_build
    from eldric_cloud.instance_report import InstanceReporter

    server = None
    # Daphne's open client connections; under uvicorn, requests in flight stand in for them.
    connections = (lambda: len(server.http_factory.channels)) if options.server != "uvicorn" else None
    if options.controller_url or settings.ELDRIC_CONTROLLER or options.config_path:
        # With --config too: a reload may name a controller later (disabled and unobserving till then).
        asgi.gateway.controller = controller_client_build(
            asgi.gateway,
            controller_url=options.controller_url,
            bind_host=options.host,
            port=options.port,
            connections=connections,
        )
    heartbeat.report_with(InstanceReporter(asgi.gateway, server=options.server, connections=connections))
    if options.server == "uvicorn":
        from eldric_cloud.server.uvicorn_server import run_uvicorn

        return run_uvicorn(sock=sock, limits=limits, replace_pid=options.replace_pid)

    from eldric_cloud.server.daphne_server import EldricDaphneServer

    if reloader is not None:
        from twisted.internet import reactor

        # Again once the reactor runs, so ours wins over anything installed at start-up.
        reactor.callWhenRunning(reloader.install_sighup)
    server = EldricDaphneServer(
        asgi.application,
        sock=sock,
        limits=limits,
        gateway=asgi.gateway,
        replace_pid=options.replace_pid,
    )
    server.run()
    return server.exit_code
