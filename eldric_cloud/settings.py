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
    "backends",
    "gateway",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

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

# --- Health, circuit breaker, failover --------------------------------------------------
ELDRIC_HEALTH_TIMEOUT = env.float("ELDRIC_HEALTH_TIMEOUT", default=10.0)
ELDRIC_DISCOVERY_INTERVAL_SECONDS = env.float("ELDRIC_DISCOVERY_INTERVAL_SECONDS", default=300.0)
ELDRIC_BREAKER_FAILURES = env.int("ELDRIC_BREAKER_FAILURES", default=3)
ELDRIC_BREAKER_COOLDOWN_SECONDS = env.float("ELDRIC_BREAKER_COOLDOWN_SECONDS", default=30.0)
ELDRIC_MAX_ATTEMPTS = env.int("ELDRIC_MAX_ATTEMPTS", default=3)
# Anthropic requires max_tokens; used when the client sends neither max_tokens nor max_completion_tokens.
ELDRIC_ANTHROPIC_DEFAULT_MAX_TOKENS = env.int("ELDRIC_ANTHROPIC_DEFAULT_MAX_TOKENS", default=4096)
ELDRIC_WORKER_CONCURRENCY = env.int("ELDRIC_WORKER_CONCURRENCY", default=4)

# --- Celery ---------------------------------------------------------------------------
from eldric_cloud.celery_settings import *  # noqa: E402,F403

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
