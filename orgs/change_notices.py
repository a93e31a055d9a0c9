"""Tell every gateway process that routing or access changed, through Redis pub/sub.

The services that bump the routing or access version call ``snapshot_changed_notify()``
inside their transaction; the notice leaves once the transaction commits. Each gateway
process's shared-state task (``gateway.shared_state``) subscribes and wakes its snapshot
refresher, which re-reads the versions from the database: the notice carries no data, so a
lost or duplicated one does no harm, and the database's slow safety poll catches whatever a
lost one missed.

Without Redis this does nothing: the processes poll the database as before.

It lives in ``orgs`` because that is the lowest app both writers import (``backends`` imports
``orgs``, never the reverse).
"""

from __future__ import annotations

import functools
import json
import logging
import time

from django.db import transaction

logger = logging.getLogger(__name__)

# Warn about an unreachable Redis at most this often (seconds): a change made while it is
# down still reaches every process by the database poll.
WARN_EVERY = 60.0
# After a failed publish, don't try again for this long (seconds): a write must not pay the
# connect timeout each time while Redis is down; the processes poll the database meanwhile.
RETRY_AFTER_FAILURE = 5.0


def shared_state_url() -> str:
    """Redis for the shared state, or "" when it is off or there is no Redis."""
    from django.conf import settings

    if not settings.ELDRIC_SHARED_STATE:
        return ""
    return settings.ELDRIC_SHARED_STATE_REDIS_URL or settings.REDIS_URL


def channel_name() -> str:
    from django.conf import settings

    return settings.ELDRIC_SHARED_STATE_PREFIX + "events"


class ChangePublisher:
    """One per process (built by ``OrgsConfig.ready``): its Redis clients, one pool per URL
    like Django's database connections, opened on first use; and its back-off after a failure."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._clients: dict[str, object] = {}
        self._warned_at = -WARN_EVERY
        self._retry_at = 0.0

    def publish(self, what: str) -> None:
        now = self._clock()
        if now < self._retry_at:
            return
        try:
            self._client(shared_state_url()).publish(channel_name(), json.dumps({"kind": "snapshot", "what": what}))
        except Exception as exc:  # never fail the write that already committed
            self._retry_at = now + RETRY_AFTER_FAILURE
            if now - self._warned_at >= WARN_EVERY:
                self._warned_at = now
                logger.warning(
                    "could not publish a %s change to Redis (%s); other instances see it at their next database poll",
                    what,
                    type(exc).__name__,
                )

    def _client(self, url: str):
        client = self._clients.get(url)
        if client is None:
            import redis

            client = self._clients[url] = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return client


def change_publisher() -> ChangePublisher:
    from django.apps import apps

    return apps.get_app_config("orgs").change_publisher


def snapshot_changed_notify(what: str) -> None:
    """After the current transaction commits (at once outside one), publish the notice."""
    if shared_state_url():
        transaction.on_commit(functools.partial(change_publisher().publish, what))
