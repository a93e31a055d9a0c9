"""The dashboard's websocket: a staff session's browser receives the full state on connect,
then a fresh state every ``ELDRIC_DASHBOARD_PUSH_SECONDS`` from the process's publisher.

Refused (closed before the handshake completes, so the browser sees a 403): no staff
session, a cross-site Origin (the session cookie alone must not let another site read the
dashboard), or a license without the dashboard.
"""

from __future__ import annotations

import logging
import time
from importlib import import_module
from types import SimpleNamespace
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user

from dashboard.frames import dashboard_denial, encode, state_frame
from dashboard.publisher import GROUP, DashboardPublisher

logger = logging.getLogger(__name__)

# An open socket re-reads its session and the license this often: a logout, a session that
# expires, a user who loses staff, or a license downgrade ends it.
RECHECK_SECONDS = 30.0


def is_staff(user) -> bool:
    return user is not None and user.is_active and user.is_staff


def same_origin(scope) -> bool:
    """Browsers always send Origin on a websocket handshake; it must name this host (or a
    CSRF-trusted origin). Clients without a browser have no cookie to abuse: no Origin is fine."""
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin")
    if origin is None:
        return True
    origin = origin.decode("latin-1")
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    host = headers.get(b"host", b"").decode("latin-1")
    return bool(host) and urlsplit(origin).netloc.lower() == host.lower()


class DashboardConsumer(AsyncWebsocketConsumer):
    def __init__(self, *args, publisher: DashboardPublisher, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.publisher = publisher
        self.subscribed = False
        self.checked_at = 0.0
        self.full_sent_at = 0.0

    async def connect(self) -> None:
        if not is_staff(self.scope.get("user")) or not same_origin(self.scope):
            await self.close()
            return
        if await database_sync_to_async(dashboard_denial)() is not None:
            await self.close()
            return
        await self.accept()
        self.checked_at = time.monotonic()
        await self.channel_layer.group_add(GROUP, self.channel_name)
        self.subscribed = True
        self.publisher.subscribe()
        await self._send_full_state()

    async def disconnect(self, code) -> None:
        if self.subscribed:
            self.subscribed = False
            self.publisher.unsubscribe()
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        # Anything the page sends means "all of it, now"; at most once per push interval, so a
        # chatty client cannot make the server rebuild the state in a loop.
        if time.monotonic() - self.full_sent_at >= self.publisher.interval:
            await self._send_full_state()

    async def dashboard_state(self, event) -> None:
        if time.monotonic() - self.checked_at >= RECHECK_SECONDS:
            self.checked_at = time.monotonic()
            if not await self._still_allowed():
                await self.close()
                return
        await self.send(text_data=event["text"])

    async def _still_allowed(self) -> bool:
        return await database_sync_to_async(self._session_still_allowed)()

    def _session_still_allowed(self) -> bool:
        # The session in the scope was read at connect; read it again from its store.
        session = self.scope.get("session")
        key = getattr(session, "session_key", None)
        if not key:
            return False
        fresh = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
        # Django's own check: the user exists and the session's password hash still matches.
        user = get_user(SimpleNamespace(session=fresh))
        return is_staff(user) and dashboard_denial() is None

    async def _send_full_state(self) -> None:
        self.full_sent_at = time.monotonic()
        try:
            text, _ = await database_sync_to_async(state_frame)(
                decisions=self.publisher.decisions, usage=self.publisher.usage_cached()
            )
        except Exception:
            logger.exception("dashboard: could not read the state")
            text = encode({"type": "error", "message": "The state could not be read; see the server log."})
        await self.send(text_data=text)
