"""Celery configuration, imported into settings.

Without ``REDIS_URL`` the broker is kombu's filesystem transport under the data dir: it needs
no server process, ships with kombu, and eldric-cloudd runs the worker (with embedded beat)
as its own child process. With ``REDIS_URL`` set, Redis is the broker and workers can run
anywhere (``celery -A eldric_cloud worker -B``).
"""

from pathlib import Path

import environ

env = environ.Env()

_DATA_DIR = Path(env.str("ELDRIC_DATA_DIR", default=str(Path(__file__).resolve().parent.parent / "var"))).resolve()
_REDIS_URL = env.str("REDIS_URL", default="")
BROKER_DIR = _DATA_DIR / "broker"

if _REDIS_URL:
    CELERY_BROKER_URL = _REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
else:
    BROKER_DIR.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://localhost/"
    # kombu's transport, with messages renamed into place whole (see there).
    CELERY_BROKER_TRANSPORT = "eldric_cloud.broker_transport:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "store_processed": False,
        # Broadcast (control) messages; the transport's default is ./control in the working dir.
        "control_folder": str(BROKER_DIR / "control"),
        # The transport polls the folder; a short interval keeps 1 s health intervals honest.
        "polling_interval": 0.2,
    }

CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(_DATA_DIR / "celerybeat-schedule")

# How often beat asks "which backends are due for a health probe?". Each backend's own
# interval (``--health-interval``) lives in the database, so every worker agrees on it.
ELDRIC_SCHEDULER_TICK_SECONDS = env.float("ELDRIC_SCHEDULER_TICK_SECONDS", default=1.0)
_DISCOVERY_INTERVAL = env.float("ELDRIC_DISCOVERY_INTERVAL_SECONDS", default=300.0)

CELERY_BEAT_SCHEDULE = {
    "backends-check-due": {
        "task": "backends.tasks.backends_check_due_task",
        "schedule": ELDRIC_SCHEDULER_TICK_SECONDS,
        # Missed ticks must not pile up behind a slow worker.
        "options": {"expires": ELDRIC_SCHEDULER_TICK_SECONDS * 5},
    },
    "backends-discover-all": {
        "task": "backends.tasks.backends_discover_all_task",
        "schedule": _DISCOVERY_INTERVAL,
        "options": {"expires": _DISCOVERY_INTERVAL},
    },
    # Deletes roll-ups past ELDRIC_TRAFFIC_MINUTES_RETENTION_HOURS / ELDRIC_TRAFFIC_DAYS_RETENTION.
    "traffic-retention": {
        "task": "traffic.tasks.traffic_retention_task",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    # Deletes usage past ELDRIC_USAGE_RECORDS_RETENTION_DAYS / ELDRIC_USAGE_DAYS_RETENTION.
    "usage-retention": {
        "task": "usage.tasks.usage_retention_task",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
    # Deletes stored /v1/responses answers past ELDRIC_RESPONSES_STORE_DAYS.
    "responses-store-retention": {
        "task": "responses_store.tasks.stored_responses_retention_task",
        "schedule": 3600.0,
        "options": {"expires": 3600.0},
    },
}
