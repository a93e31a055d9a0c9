"""Config hot reload: re-read ``--config`` on SIGHUP or when the file changes.

The difference is applied to the static backends and the gateway settings in one
transaction; every gateway process picks it up through the routing version, so nothing
restarts and requests in flight keep their upstream connection. A changed controller URL is
handed to the running controller client, which moves its registration there. A file that does not
parse or validate is rejected with one log line and the running config stays.

The signal handler only wakes the watcher thread: all reading, database work and discovery
happen there, never in a signal handler and never on the server's event loop.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from backends.specs import BackendSpec
from eldric_cloud.startup import ConfigError, FileConfig, load_config_file, merge_backends

logger = logging.getLogger("eldric_cloud.reload")

DEFAULT_HEALTH_INTERVAL_MS = 60_000  # as cli.Options
DEFAULT_PORT = 8889


@dataclass(frozen=True)
class ReloadPlan:
    """What the file plus the start-up flags ask for."""

    backends: list[BackendSpec]
    default_backend: str
    explicit_default: str  # set by --default-backend or the file; checked against known backends
    health_interval_ms: int
    controller_url: str
    port: int | None


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    error: str = ""

    def __bool__(self) -> bool:
        return self.ok


class ConfigReloader:
    """Re-applies the ``--config`` file; ``flags`` are the start-up flags, which still win."""

    def __init__(
        self, options, flags: argparse.Namespace | None = None, *, poll_seconds: float = 1.0, discover: bool = True
    ) -> None:
        from eldric_cloud.startup import parse_backends_flag

        self.path = os.path.abspath(options.config_path) if options.config_path else None
        self.port = options.port
        self.poll_seconds = poll_seconds
        self.discover = discover
        flags = flags or argparse.Namespace()
        backends_flag = getattr(flags, "backends", None)
        # Keys given as "name::" were read from the environment at start-up; re-reading the
        # flag here yields the same values.
        self._flag_backends = parse_backends_flag(backends_flag) if backends_flag else []
        self._flag_default = getattr(flags, "default_backend", None) or ""
        self._flag_health = getattr(flags, "health_interval", None)
        self._flag_controller = getattr(flags, "controller", None) or ""
        self._flag_port = getattr(flags, "port", None)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._signature = self._stat()
        self._missing_logged = False

    # --- planning (pure) ---------------------------------------------------------------

    def plan(self, file: FileConfig) -> ReloadPlan:
        """Merge the file with the start-up flags exactly as ``cli.Options`` does."""
        backends = merge_backends(file.backends, self._flag_backends)
        explicit = self._flag_default or file.default_backend or ""
        return ReloadPlan(
            backends=backends,
            default_backend=explicit or (backends[0].name if backends else ""),
            explicit_default=explicit,
            health_interval_ms=self._flag_health or file.health_check_interval_ms or DEFAULT_HEALTH_INTERVAL_MS,
            controller_url=self._flag_controller or file.controller_url or "",
            port=file.port,
        )

    # --- reloading ---------------------------------------------------------------------

    def reload(self, reason: str = "requested") -> ReloadResult:
        """Re-read the file and apply it. Blocking (database and discovery): call it from a thread."""
        if self.path is None:
            logger.info("config reload (%s): no --config file was given; nothing to reload", reason)
            return ReloadResult(ok=False, error="no config file")
        with self._lock:
            try:
                plan = self.plan(load_config_file(self.path))
                result = self._apply(plan)
            except ConfigError as exc:
                message = str(exc)  # names file, field and problem; never a secret value
                logger.error("config reload (%s) rejected, keeping the running config: %s", reason, message)
                return ReloadResult(ok=False, error=message)
            except Exception as exc:
                logger.error(
                    "config reload (%s) from %s failed, keeping the running config: %s",
                    reason,
                    self.path,
                    type(exc).__name__,
                    exc_info=True,
                )
                return ReloadResult(ok=False, error=type(exc).__name__)
            self._log(reason, result, plan)
            self._move_controller(plan.controller_url)
            if self.discover:
                self._discover(result.added + result.changed)
            return result

    def _apply(self, plan: ReloadPlan) -> ReloadResult:
        from django.conf import settings
        from django.db import transaction

        from backends.selectors import backend_names, instance_settings_read
        from backends.services import StaticNameConflict, backends_static_apply, instance_settings_update

        # Only this instance's static backends and settings: other instances on the same
        # database keep theirs.
        instance = settings.ELDRIC_INSTANCE
        with transaction.atomic():
            if plan.explicit_default:
                known = {b.name for b in plan.backends} | set(backend_names(runtime_only=True, instance=instance))
                if plan.explicit_default not in known:
                    origin = "--default-backend" if self._flag_default else f"{self.path}: default_backend"
                    raise ConfigError(
                        f"{origin}: {plan.explicit_default!r} is not a configured backend "
                        f"(known: {', '.join(sorted(known)) or 'none'})"
                    )
            try:
                diff = backends_static_apply(specs=plan.backends, instance=instance)
            except StaticNameConflict as exc:
                raise ConfigError(str(exc)) from None
            row = instance_settings_read(instance=instance)
            updates, described = {}, []
            for attr, value, label in (
                ("default_backend", plan.default_backend, "default backend"),
                ("health_interval_ms", plan.health_interval_ms, "health interval (ms)"),
                ("controller_url", plan.controller_url, "controller url"),
            ):
                current = getattr(row, attr) if row is not None else None
                if current != value:
                    updates[attr] = value
                    shown = _shown_url if attr == "controller_url" else _shown
                    described.append(f"{label} {shown(current)} -> {shown(value)}")
            if updates:
                instance_settings_update(instance=instance, **updates)
        return ReloadResult(
            ok=True, added=list(diff.added), changed=list(diff.changed), removed=list(diff.removed), settings=described
        )

    def _log(self, reason: str, result: ReloadResult, plan: ReloadPlan) -> None:
        parts = [
            f"{what} {', '.join(names)}"
            for what, names in (("added", result.added), ("changed", result.changed), ("removed", result.removed))
            if names
        ]
        parts += result.settings
        logger.info("config reload (%s) from %s: %s", reason, self.path, "; ".join(parts) if parts else "no changes")
        wanted_port = self._flag_port or plan.port or DEFAULT_PORT
        if wanted_port != self.port:
            logger.warning("config reload: port %s takes a restart; still listening on %s", wanted_port, self.port)

    def _move_controller(self, controller_url: str) -> None:
        # The row above is what the admin shows; the running client is what registers. It
        # lives on the serving loop, which the move is handed to (controller/build.py).
        from eldric_cloud.controller.build import controller_url_apply

        try:
            controller_url_apply(controller_url)
        except Exception:
            logger.exception("config reload: moving the controller client failed; it keeps its controller")

    def _discover(self, names: list[str]) -> None:
        from django.conf import settings

        from backends.selectors import backends_enabled

        targets = backends_enabled(names=names, instance=settings.ELDRIC_INSTANCE)
        if not targets:
            return
        with ThreadPoolExecutor(max_workers=min(8, len(targets)), thread_name_prefix="reload-discover") as pool:
            for name, result in pool.map(_discover_one, targets):
                if result is None:
                    continue
                if result.status == "healthy":
                    logger.info("backend %s: %s, %d models", name, result.status, len(result.models))
                else:
                    logger.warning("backend %s: %s (%s)", name, result.status, result.error)

    # --- triggers ----------------------------------------------------------------------

    def _stat(self) -> tuple[int, int, int] | None:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _on_sighup(self, signum, frame) -> None:
        # Signal context: no logging, no locks; wake the watcher and return.
        self._wake.set()

    def install_sighup(self) -> bool:
        """Make SIGHUP trigger a reload. Must run in the main thread (Python's rule for signals)."""
        if not hasattr(signal, "SIGHUP"):
            return False
        signal.signal(signal.SIGHUP, self._on_sighup)
        return True

    def watch(self) -> threading.Thread:
        """Start the daemon thread that polls the file and serves SIGHUP requests."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="config-reload", daemon=True)
            self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _run(self) -> None:
        from django.db import connections

        while not self._stop.is_set():
            signalled = self._wake.wait(self.poll_seconds)
            if self._stop.is_set():
                return
            if signalled:
                # Cleared only when seen: a SIGHUP landing just after a timed-out wait stays
                # set for the next turn instead of being swallowed by a file-change reload.
                self._wake.clear()
            reason = "SIGHUP" if signalled else self._file_changed()
            if reason is None:
                continue
            self._signature = self._stat()
            try:
                self.reload(reason)
            except Exception:
                # The watcher must outlive any failure; the running config stays.
                logger.exception("config reload (%s) failed", reason)
            finally:
                connections.close_all()  # this thread's connections only

    def _file_changed(self) -> str | None:
        signature = self._stat()
        if signature == self._signature:
            return None
        if signature is None:
            if not self._missing_logged and self.path is not None:
                logger.warning("config file %s is gone; keeping the running config", self.path)
                self._missing_logged = True
            self._signature = None
            return None
        self._missing_logged = False
        # Let a writer finish: reload only once the file looks the same twice in a row.
        if self._stop.wait(0.1) or self._stat() != signature:
            return None
        return "file changed"


def _shown(value) -> str:
    return str(value) if value else "none"


def _shown_url(value) -> str:
    from eldric_cloud.controller.client import shown_url

    return shown_url(value or "")  # never a user:password part


def _discover_one(item: tuple[int, str]):
    from django.db import connections

    from backends.services import backend_discover

    backend_id, name = item
    try:
        return name, backend_discover(backend_id=backend_id)
    except Exception:
        logger.exception("backend %s: discovery after reload failed", name)
        return name, None
    finally:
        connections.close_all()
