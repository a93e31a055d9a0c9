"""Publishing a change notice when Redis is away: the write that committed never fails, the
warning is not repeated for every write, and no write pays the connect timeout again for a
while (the other processes see the change at their next database poll)."""

from __future__ import annotations

import logging

from orgs.change_notices import RETRY_AFTER_FAILURE, WARN_EVERY, ChangePublisher
from tests.fakes.server import free_port


def test_redis_away_costs_one_warning_and_one_attempt_per_back_off(settings, caplog):
    settings.ELDRIC_SHARED_STATE = True
    settings.ELDRIC_SHARED_STATE_REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens
    now = [1000.0]
    publisher = ChangePublisher(clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="orgs.change_notices")

    publisher.publish("routing")  # refused: warned
    (client,) = publisher._clients.values()
    attempts = []
    client.publish = lambda *args: attempts.append(args)  # what would have been sent from now on
    now[0] += RETRY_AFTER_FAILURE / 2
    publisher.publish("routing")  # inside the back-off: not even tried

    assert attempts == []
    assert caplog.text.count("could not publish a routing change to Redis") == 1

    now[0] += RETRY_AFTER_FAILURE
    publisher.publish("access")  # tried again after the back-off
    assert len(attempts) == 1 and '"what": "access"' in attempts[0][1]
    assert WARN_EVERY > RETRY_AFTER_FAILURE  # so the retry above logged nothing new


def test_a_published_notice_reaches_a_subscriber(settings):
    import redis

    settings.ELDRIC_SHARED_STATE = True
    settings.ELDRIC_SHARED_STATE_REDIS_URL = "redis://127.0.0.1:6379/0"
    settings.ELDRIC_SHARED_STATE_PREFIX = "eldric-test-notices:"
    listener = redis.Redis.from_url(settings.ELDRIC_SHARED_STATE_REDIS_URL).pubsub()
    listener.subscribe("eldric-test-notices:events")
    listener.get_message(timeout=1)  # the subscription's confirmation

    ChangePublisher().publish("routing")

    message = listener.get_message(timeout=2)
    assert message is not None and b'"what": "routing"' in message["data"]
    listener.close()
