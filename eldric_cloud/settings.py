"""Settings for eldric-cloudd.

Everything is read from the environment (django-environ). The defaults serve one
machine with nothing else installed: SQLite under ``ELDRIC_DATA_DIR`` and no Redis.
``DATABASE_URL`` and ``REDIS_URL`` switch to Postgres and Redis for multi-instance set-ups.
"""

from pathlib import Path

import environ

from eldric_cloud.datadir import data_dir_secret

env = environ.Env()

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env.str("ELDRIC_DATA_DIR", default=str(BASE_DIR / "var"))).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env.str("ELDRIC_SECRET_KEY", default="") or data_dir_secret(DATA_DIR / "secret_key")
DEBUG = env.bool("ELDRIC_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ELDRIC_ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("ELDRIC_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "traffic",
    "orgs",
    "backends",
    "usage",
    "responses_store",
    "gateway",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # /static/*: answered here, before sessions and CSRF (see dashboard/static_files.py).
    "dashboard.static_files.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "eldric_cloud.urls"
ASGI_APPLICATION = "eldric_cloud.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'eldric.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the gateway's snapshot reader run beside the Celery worker's writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The dashboard's websocket group (dashboard/publisher.py): across instances through Redis,
# within the process otherwise. The state itself is read from the database either way.
if REDIS_URL:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
# Filled by collectstatic at every start (eldric_cloud/bootstrap.py), served by WhiteNoise.
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "backends.api_errors.openai_shaped_exception_handler",
    "UNAUTHENTICATED_USER": None,
    # The management API: the admin token, or a staff session (CSRF on writes). See backends/api_auth.py.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "backends.api_auth.AdminTokenAuthentication",
        "backends.api_auth.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["backends.api_auth.IsAdmin"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "eldric-cloudd management API",
    "DESCRIPTION": "Backends, model catalogue and audit log. Send 'Authorization: Bearer <admin token>'.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [
        "backends.api_auth.AdminTokenAuthentication",
        "backends.api_auth.StaffSessionAuthentication",
    ],
    "SERVE_PERMISSIONS": ["backends.api_auth.IsAdmin"],
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "HealthStatusEnum": "backends.models.HealthStatus",
        "BackendSourceEnum": "backends.models.BackendSource",
        "AuditSourceEnum": "backends.models.AuditSource",
        "AuditActionEnum": "backends.models.AuditAction",
    },
}

# --- Management API ---------------------------------------------------------------------
# Bearer token for /api/v1/*. When unset, the first start generates one and stores its hash
# (rotate with `manage.py rotate_admin_token`).
ELDRIC_ADMIN_TOKEN = env.str("ELDRIC_ADMIN_TOKEN", default="")

# --- Upstream keys -------------------------------------------------------------------
# Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
ELDRIC_ENCRYPTION_KEYS = env.list("ELDRIC_ENCRYPTION_KEY", default=[])
ELDRIC_ENCRYPTION_KEY_FILE = DATA_DIR / "encryption.key"

# --- Instance identity ---------------------------------------------------------------
# Several instances may share one database; each keeps its own worker id under this name.
ELDRIC_INSTANCE = env.str("ELDRIC_INSTANCE", default="default")

# --- Hot path -------------------------------------------------------------------------
ELDRIC_MAX_BODY_BYTES = env.int("ELDRIC_MAX_BODY_BYTES", default=20 * 1024 * 1024)
ELDRIC_CONNECT_TIMEOUT = env.float("ELDRIC_CONNECT_TIMEOUT", default=5.0)
ELDRIC_READ_TIMEOUT = env.float("ELDRIC_READ_TIMEOUT", default=300.0)
ELDRIC_WRITE_TIMEOUT = env.float("ELDRIC_WRITE_TIMEOUT", default=30.0)
ELDRIC_POOL_TIMEOUT = env.float("ELDRIC_POOL_TIMEOUT", default=5.0)
ELDRIC_MAX_CONNECTIONS = env.int("ELDRIC_MAX_CONNECTIONS", default=1000)
# "aiohttp" (httpx API over aiohttp's engine, measured faster here) or "httpx" (pure httpx).
ELDRIC_HTTP_TRANSPORT = env.str("ELDRIC_HTTP_TRANSPORT", default="aiohttp")
# When set, /v1/* requires "Authorization: Bearer <this key>".
ELDRIC_MASTER_KEY = env.str("ELDRIC_MASTER_KEY", default="")
# How often each gateway process checks the database for a new routing version.
ELDRIC_SNAPSHOT_POLL_SECONDS = env.float("ELDRIC_SNAPSHOT_POLL_SECONDS", default=0.5)
# /v1/models answers this large or larger are gzipped for clients that accept it; 0 never.
ELDRIC_GZIP_MIN_BYTES = env.int("ELDRIC_GZIP_MIN_BYTES", default=64 * 1024)

# --- Health, circuit breaker, failover --------------------------------------------------
ELDRIC_HEALTH_TIMEOUT = env.float("ELDRIC_HEALTH_TIMEOUT", default=10.0)
ELDRIC_DISCOVERY_INTERVAL_SECONDS = env.float("ELDRIC_DISCOVERY_INTERVAL_SECONDS", default=300.0)
ELDRIC_BREAKER_FAILURES = env.int("ELDRIC_BREAKER_FAILURES", default=3)
ELDRIC_BREAKER_COOLDOWN_SECONDS = env.float("ELDRIC_BREAKER_COOLDOWN_SECONDS", default=30.0)
ELDRIC_MAX_ATTEMPTS = env.int("ELDRIC_MAX_ATTEMPTS", default=3)
# Anthropic requires max_tokens; used when the client sends neither max_tokens nor max_completion_tokens.
ELDRIC_ANTHROPIC_DEFAULT_MAX_TOKENS = env.int("ELDRIC_ANTHROPIC_DEFAULT_MAX_TOKENS", default=4096)
ELDRIC_WORKER_CONCURRENCY = env.int("ELDRIC_WORKER_CONCURRENCY", default=4)

# --- Request pipeline (gateway) --------------------------------------------------------
# A non-stream request is answered within this many seconds (504 after), failovers included.
ELDRIC_REQUEST_TIMEOUT = env.float("ELDRIC_REQUEST_TIMEOUT", default=600.0)
# A stream that sends no complete event for this long is ended with an error event.
ELDRIC_STREAM_IDLE_TIMEOUT = env.float("ELDRIC_STREAM_IDLE_TIMEOUT", default=300.0)
# The largest non-stream upstream answer the gateway holds in memory (502 beyond).
ELDRIC_MAX_RESPONSE_BYTES = env.int("ELDRIC_MAX_RESPONSE_BYTES", default=64 * 1024 * 1024)
# An upstream's Retry-After is honoured up to this many seconds.
ELDRIC_RETRY_AFTER_MAX_SECONDS = env.float("ELDRIC_RETRY_AFTER_MAX_SECONDS", default=300.0)
# The longest line an upstream stream may send before the stream is ended (memory held per stream).
ELDRIC_MAX_STREAM_LINE_BYTES = env.int("ELDRIC_MAX_STREAM_LINE_BYTES", default=4 * 1024 * 1024)

# --- Traffic accounting and /metrics ---------------------------------------------------
# How often each gateway process writes its buffered accounting to the roll-ups.
ELDRIC_TRAFFIC_FLUSH_SECONDS = env.float("ELDRIC_TRAFFIC_FLUSH_SECONDS", default=2.0)
ELDRIC_TRAFFIC_MINUTES_RETENTION_HOURS = env.float("ELDRIC_TRAFFIC_MINUTES_RETENTION_HOURS", default=48.0)
ELDRIC_TRAFFIC_DAYS_RETENTION = env.int("ELDRIC_TRAFFIC_DAYS_RETENTION", default=400)
# Finished requests waiting for the next flush; past it they are counted as dropped.
ELDRIC_TRAFFIC_MAX_QUEUE = env.int("ELDRIC_TRAFFIC_MAX_QUEUE", default=100_000)
# Roll-up rows held while the database is away; past it the oldest minutes are dropped (logged).
ELDRIC_TRAFFIC_MAX_BACKLOG_ROWS = env.int("ELDRIC_TRAFFIC_MAX_BACKLOG_ROWS", default=50_000)
# Distinct model names and error codes a process turns into labels; the rest count as "other".
ELDRIC_TRAFFIC_MAX_MODEL_LABELS = env.int("ELDRIC_TRAFFIC_MAX_MODEL_LABELS", default=1000)
ELDRIC_TRAFFIC_MAX_ERROR_CODES = env.int("ELDRIC_TRAFFIC_MAX_ERROR_CODES", default=100)
# An instance's circuit state counts for this long after its last report.
ELDRIC_TRAFFIC_LIVE_STATE_WINDOW_SECONDS = env.float("ELDRIC_TRAFFIC_LIVE_STATE_WINDOW_SECONDS", default=30.0)
# How long shutdown waits for the final flush.
ELDRIC_TRAFFIC_STOP_TIMEOUT_SECONDS = env.float("ELDRIC_TRAFFIC_STOP_TIMEOUT_SECONDS", default=10.0)
# /metrics: open to loopback clients, the admin token from anywhere else; "1" opens it to all.
ELDRIC_METRICS_PUBLIC = env.bool("ELDRIC_METRICS_PUBLIC", default=False)
# Behind a reverse proxy on the same host every client looks like loopback: set this to 0 there.
ELDRIC_METRICS_LOOPBACK_OPEN = env.bool("ELDRIC_METRICS_LOOPBACK_OPEN", default=True)
# prometheus-client's multi-process mode reads this variable when its first metric is built,
# so it is set here, before anything imports it; the embedded worker inherits it.
# (env.ENVIRON is os.environ.)
env.ENVIRON.setdefault("PROMETHEUS_MULTIPROC_DIR", str(DATA_DIR / "prometheus"))
PROMETHEUS_MULTIPROC_DIR = Path(env.ENVIRON["PROMETHEUS_MULTIPROC_DIR"])
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)

# --- Server: body limits, slow clients, drain and restart --------------------------------
# ELDRIC_MAX_BODY_BYTES (above) is enforced by the server as body bytes arrive, on every path.
# Time to receive a request's complete headers, from connection open or the end of the previous
# response (so it is also the keep-alive idle timeout).
ELDRIC_HEADER_TIMEOUT = env.float("ELDRIC_HEADER_TIMEOUT", default=10.0)
# Longest silence tolerated while a request body is arriving.
ELDRIC_BODY_IDLE_TIMEOUT = env.float("ELDRIC_BODY_IDLE_TIMEOUT", default=30.0)
# Open client connections per process; beyond it new connections are closed at once.
ELDRIC_MAX_CLIENT_CONNECTIONS = env.int("ELDRIC_MAX_CLIENT_CONNECTIONS", default=2048)
# After a refusal (413, 408), how long the rest of the body is read and dropped so the client can read the answer.
ELDRIC_LINGER_SECONDS = env.float("ELDRIC_LINGER_SECONDS", default=5.0)
# SIGTERM: how long in-flight requests and streams may finish before streams are ended with an error event.
ELDRIC_DRAIN_SECONDS = env.float("ELDRIC_DRAIN_SECONDS", default=30.0)
# SIGTERM: how long to keep accepting (readiness 503, Connection: close) before closing the listener,
# so a load balancer's readiness probe sees the drain first. 0 for a single process.
ELDRIC_DRAIN_DELAY_SECONDS = env.float("ELDRIC_DRAIN_DELAY_SECONDS", default=0.0)
# SO_REUSEPORT on the listening socket: a new process can listen beside the old one (zero-downtime restart).
ELDRIC_REUSE_PORT = env.bool("ELDRIC_REUSE_PORT", default=False)
# Daphne: write each loop turn's output at the end of the turn, not after an epoll round trip
# (eldric_cloud/server/transport.py). Off gives Twisted's own transport.
ELDRIC_TURN_END_WRITES = env.bool("ELDRIC_TURN_END_WRITES", default=True)

# --- Management API and backend hardening -----------------------------------------------
# JSON bodies of /api/v1/* nested deeper than this answer 400 (Python's parser would recurse).
ELDRIC_MAX_JSON_DEPTH = env.int("ELDRIC_MAX_JSON_DEPTH", default=64)
# The admin's forms and the management API read at most ELDRIC_MAX_BODY_BYTES (413 beyond).
DATA_UPLOAD_MAX_MEMORY_SIZE = ELDRIC_MAX_BODY_BYTES
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["backends.api_parsers.BoundedJSONParser"]
# A probe's model list: at most this many bytes, models, and characters per model id (the column).
ELDRIC_MAX_MODELS_BODY_BYTES = env.int("ELDRIC_MAX_MODELS_BODY_BYTES", default=16 * 1024 * 1024)
ELDRIC_MAX_MODELS_PER_BACKEND = env.int("ELDRIC_MAX_MODELS_PER_BACKEND", default=10000)
# Comma-separated CIDRs and host names (a name also covers its subdomains) that no backend URL
# may point at, on top of the link-local and cloud-metadata addresses that are always denied.
ELDRIC_BACKEND_URL_DENY = env.list("ELDRIC_BACKEND_URL_DENY", default=[])
# ELDRIC_DEBUG=1 shows Django's technical 500 page; this filter masks upstream keys on it.
DEFAULT_EXCEPTION_REPORTER_FILTER = "backends.debug_filter.SecretMaskingReporterFilter"

# --- Celery; organisations and licenses, client keys and limits, usage and cost --------
from eldric_cloud.celery_settings import *  # noqa: E402,F403
from eldric_cloud.settings_parts.controller import *  # noqa: E402,F403
from eldric_cloud.settings_parts.dashboard import *  # noqa: E402,F403
from eldric_cloud.settings_parts.keys import *  # noqa: E402,F403
from eldric_cloud.settings_parts.licenses import *  # noqa: E402,F403
from eldric_cloud.settings_parts.responses import *  # noqa: E402,F403
from eldric_cloud.settings_parts.shared_state import *  # noqa: E402,F403
from eldric_cloud.settings_parts.usage import *  # noqa: E402,F403

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("ELDRIC_LOG_LEVEL", default="INFO")},
    "loggers": {
        # httpx logs every request line at INFO; the gateway logs what matters itself.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}
