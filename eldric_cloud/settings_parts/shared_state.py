"""Settings for state shared by several instances through Redis; star-imported by eldric_cloud.settings.

With ``REDIS_URL`` set, every gateway process shares its circuit-breaker openings, the
half-open trial (as a claim only one instance holds) and Retry-After blocks, and hears of
routing changes at once instead of polling the database. Requests never wait for Redis: a
background task keeps each process's local view in step (``gateway/shared_state.py``).
"""

import environ

env = environ.Env()

# Share breaker state and routing-change notices through Redis when a Redis URL is known.
ELDRIC_SHARED_STATE = env.bool("ELDRIC_SHARED_STATE", default=True)
# Overrides REDIS_URL for the shared state alone ("" = follow REDIS_URL).
ELDRIC_SHARED_STATE_REDIS_URL = env.str("ELDRIC_SHARED_STATE_REDIS_URL", default="")
# Prefix of the keys and the pub/sub channel: deployments sharing one Redis keep apart by it.
ELDRIC_SHARED_STATE_PREFIX = env.str("ELDRIC_SHARED_STATE_PREFIX", default="eld:shared:")
# How often the background task sends this process's transitions and asks for trial claims
# (seconds). Other instances see a transition within about this, plus Redis's latency.
ELDRIC_SHARED_STATE_SYNC_SECONDS = env.float("ELDRIC_SHARED_STATE_SYNC_SECONDS", default=0.1)
# A full re-read of the shared state, in case a pub/sub message was lost (seconds).
ELDRIC_SHARED_STATE_RESYNC_SECONDS = env.float("ELDRIC_SHARED_STATE_RESYNC_SECONDS", default=30.0)
# Connecting to and each call to Redis from the background task (seconds).
ELDRIC_SHARED_STATE_TIMEOUT_SECONDS = env.float("ELDRIC_SHARED_STATE_TIMEOUT_SECONDS", default=2.0)
# How long an unused half-open trial claim lasts before another instance may take it (seconds).
ELDRIC_BREAKER_TRIAL_CLAIM_SECONDS = env.float("ELDRIC_BREAKER_TRIAL_CLAIM_SECONDS", default=2.0)
# With routing-change notices arriving through Redis, the database is still polled this often
# as a safety net (seconds). Without Redis, or while it is unreachable, ELDRIC_SNAPSHOT_POLL_SECONDS.
ELDRIC_SNAPSHOT_SAFETY_POLL_SECONDS = env.float("ELDRIC_SNAPSHOT_SAFETY_POLL_SECONDS", default=30.0)
