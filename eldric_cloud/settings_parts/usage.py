"""Settings for usage; star-imported by eldric_cloud.settings."""

import environ

env = environ.Env()

# How often the usage recorder writes what it queued (seconds).
ELDRIC_USAGE_FLUSH_SECONDS = env.float("ELDRIC_USAGE_FLUSH_SECONDS", default=1.0)
# Finished requests queued between two flushes; past it they are counted, logged and dropped.
ELDRIC_USAGE_MAX_QUEUE = env.int("ELDRIC_USAGE_MAX_QUEUE", default=100_000)
# Records held for a later write while the database is away; past it the oldest are dropped (logged).
ELDRIC_USAGE_MAX_BACKLOG = env.int("ELDRIC_USAGE_MAX_BACKLOG", default=200_000)
# Records per write transaction.
ELDRIC_USAGE_BATCH_SIZE = env.int("ELDRIC_USAGE_BATCH_SIZE", default=2000)
# How long a graceful shutdown waits for the last usage write (seconds).
ELDRIC_USAGE_STOP_TIMEOUT_SECONDS = env.float("ELDRIC_USAGE_STOP_TIMEOUT_SECONDS", default=10.0)
# Retention: per-request records, and daily roll-ups (days). Enforced hourly by Celery beat.
ELDRIC_USAGE_RECORDS_RETENTION_DAYS = env.int("ELDRIC_USAGE_RECORDS_RETENTION_DAYS", default=90)
ELDRIC_USAGE_DAYS_RETENTION = env.int("ELDRIC_USAGE_DAYS_RETENTION", default=730)
# Rows deleted per transaction by the retention task.
ELDRIC_USAGE_RETENTION_CHUNK = env.int("ELDRIC_USAGE_RETENTION_CHUNK", default=5000)
# Most groups one GET /api/v1/usage answers (the answer says when it was cut).
ELDRIC_USAGE_API_MAX_GROUPS = env.int("ELDRIC_USAGE_API_MAX_GROUPS", default=10_000)
