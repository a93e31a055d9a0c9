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
# Per process, like the client below: (last warning, no attempt before).
_state = {"warned_at": -WARN_EVERY, "retry_at": 0.0}


def shared_state_url() -> str:
    """Redis for the shared state, or "" when it is off or there is no Redis."""
    from django.conf import settings

    if not settings.ELDRIC_SHARED_STATE:
        return ""
    return settings.ELDRIC_SHARED_STATE_REDIS_URL or settings.REDIS_URL


def channel_name() -> str:
    from django.conf import settings

    return settings.ELDRIC_SHARED_STATE_PREFIX + "events"


def snapshot_changed_notify(what: str) -> None:
    """After the current transaction commits (at once outside one), publish the notice."""
    if shared_state_url():
        transaction.on_commit(functools.partial(_publish, what))


def _publish(what: str) -> None:
    now = time.monotonic()
    if now < _state["retry_at"]:
        return
    try:
        client = _client(shared_state_url())
        client.publish(channel_name(), json.dumps({"kind": "snapshot", "what": what}))
    except Exception as exc:  # never fail the write that already committed
        _state["retry_at"] = now + RETRY_AFTER_FAILURE
        if now - _state["warned_at"] >= WARN_EVERY:
            _state["warned_at"] = now
            logger.warning(
                "could not publish a %s change to Redis (%s); other instances see it at their next database poll",
                what,
                type(exc).__name__,
            )


@functools.cache
def _client(url: str):
    """One connection pool per process and URL, like Django's database connections: built on
    first use, never at import."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
