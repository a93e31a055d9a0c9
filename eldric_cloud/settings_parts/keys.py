"""Settings for client keys, rate limits and budgets; star-imported by eldric_cloud.settings."""

import environ

env = environ.Env()

# When true, /v1/* without a key (client key or ELDRIC_MASTER_KEY) answers 401. Off by default:
# the seed's /v1 is open unless ELDRIC_MASTER_KEY is set.
ELDRIC_REQUIRE_CLIENT_KEY = env.bool("ELDRIC_REQUIRE_CLIENT_KEY", default=False)
# Rate limits and budgets live in Redis when REDIS_URL is set (exact across instances), else in
# this process's memory. This overrides REDIS_URL for the limits alone ("" = follow REDIS_URL).
ELDRIC_LIMITS_REDIS_URL = env.str("ELDRIC_LIMITS_REDIS_URL", default="")
# Redis unreachable or too slow: true lets requests through unlimited (logged once a minute and
# shown in /health), false answers 503 limits_unavailable.
ELDRIC_LIMITS_FAIL_OPEN = env.bool("ELDRIC_LIMITS_FAIL_OPEN", default=True)
# Longest a request waits for one Redis call of the limiter, connecting included.
ELDRIC_LIMITS_REDIS_TIMEOUT = env.float("ELDRIC_LIMITS_REDIS_TIMEOUT", default=0.5)
# After a failed Redis call, the limiter applies the fail-open/closed policy without trying Redis
# for this long, so a Redis outage costs requests no timeout each.
ELDRIC_LIMITS_RETRY_SECONDS = env.float("ELDRIC_LIMITS_RETRY_SECONDS", default=1.0)
# A concurrency slot a process never released (it crashed) lapses after this many seconds.
ELDRIC_LIMITS_SLOT_LEASE_SECONDS = env.float("ELDRIC_LIMITS_SLOT_LEASE_SECONDS", default=900.0)
# Prefix of the limiter's Redis keys; deployments sharing one Redis database keep apart by it.
ELDRIC_LIMITS_REDIS_PREFIX = env.str("ELDRIC_LIMITS_REDIS_PREFIX", default="eld:lim:")
