"""Settings for ``/v1/responses``; star-imported by eldric_cloud.settings."""

import environ

env = environ.Env()

# How long answers of translated /v1/responses requests are kept for ``previous_response_id``
# (days). 0 turns the store off: nothing is written, and such a request answers 400.
ELDRIC_RESPONSES_STORE_DAYS = env.int("ELDRIC_RESPONSES_STORE_DAYS", default=30)
# How often the store writes what it queued (seconds), and how much it queues between two writes.
ELDRIC_RESPONSES_STORE_FLUSH_SECONDS = env.float("ELDRIC_RESPONSES_STORE_FLUSH_SECONDS", default=1.0)
ELDRIC_RESPONSES_STORE_MAX_QUEUE = env.int("ELDRIC_RESPONSES_STORE_MAX_QUEUE", default=10_000)
# Rows deleted per transaction by the hourly retention task.
ELDRIC_RESPONSES_RETENTION_CHUNK = env.int("ELDRIC_RESPONSES_RETENTION_CHUNK", default=2000)
