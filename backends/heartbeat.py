"""The instance heartbeat: each running eldric-cloudd says it is alive every
``ELDRIC_HEARTBEAT_SECONDS`` (30 s), which is what the license's cloud-worker limit counts
(instances seen in the last ``ELDRIC_INSTANCE_LIVE_SECONDS``, 90 s). The same beat logs the
license warning while a license is in its grace period or has expired, once a day.

Once serving starts, each beat also stores the process's own report (uptime, load, the
controller client's state; see ``eldric_cloud.instance_report``) on the instance's row, so
the admin and the dashboard of every instance sharing the database can show it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from django.utils import timezone

logger = logging.getLogger("eldric_cloud.license")

WARNING_EVERY = timedelta(days=1)


class LicenseWarner:
    """Logs each license's warning at most once per ``WARNING_EVERY``."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], datetime] = {}

    def check(self, states, now: datetime) -> list[str]:
        logged = []
        for state in states:
            text = state.warning(now)
            if not text:
                continue
            key = (state.organisation, state.status(now))
            last = self._last.get(key)
            if last is not None and now - last < WARNING_EVERY:
                continue
            self._last[key] = now
            logger.warning("%s", text)
            logged.append(text)
        return logged


class InstanceHeartbeat:
    def __init__(
        self,
        *,
        instance: str,
        interval: float,
        clock: Callable[[], datetime] = timezone.now,
        warner: LicenseWarner | None = None,
    ) -> None:
        self.instance = instance
        self.interval = interval
        self.clock = clock
        self.warner = warner or LicenseWarner()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._reporter: Callable[[], dict] | None = None
        self.last_beat: datetime | None = None

    def report_with(self, reporter: Callable[[], dict]) -> None:
        """From now on each beat stores ``reporter()``; beat at once, so the row does not wait
        a whole interval for its first report."""
        self._reporter = reporter
        self._wake.set()

    def beat(self) -> None:
        from backends.services import worker_heartbeat
        from orgs.licenses import license_states_get

        now = self.clock()
        worker_heartbeat(instance=self.instance, now=now, report=self._report())
        self.last_beat = now
        self.warner.check(license_states_get().values(), now)

    def _report(self) -> dict | None:
        if self._reporter is None:
            return None
        try:
            return self._reporter()
        except Exception:
            # The beat itself matters more (it is what the license counts): send it without.
            logger.exception("instance heartbeat: could not gather this instance's report")
            return None

    def start(self) -> InstanceHeartbeat:
        self.beat()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="instance-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and stop counting against the limit at once (a clean shutdown)."""
        from django.db import connection

        from backends.services import worker_heartbeat_clear

        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(5)
        try:
            if self.last_beat is not None:
                worker_heartbeat_clear(instance=self.instance, last_beat=self.last_beat)
        except Exception:
            logger.warning("could not clear this instance's heartbeat; it stops counting after the live window")
        finally:
            connection.close()

    def _run(self) -> None:
        from django.db import connection

        try:
            while True:
                self._wake.wait(self.interval)
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    self.beat()
                except Exception:
                    connection.close()
                    logger.exception("instance heartbeat failed; trying again in %s s", self.interval)
        finally:
            connection.close()
