"""Hot-path settings, read once when the gateway is built so requests never touch Django's
settings proxy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    max_body_bytes: int = 20 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    write_timeout: float = 30.0
    pool_timeout: float = 5.0
    max_connections: int = 1000
    max_attempts: int = 3
    breaker_failures: int = 3
    breaker_cooldown: float = 30.0
    master_key: str = ""
    transport: str = "aiohttp"
    # A non-stream request ends by then, failovers included.
    request_timeout: float = 600.0
    # A stream that sends no complete event for this long is ended.
    stream_idle_timeout: float = 300.0
    # Largest non-stream upstream answer the gateway will hold.
    max_response_bytes: int = 64 * 1024 * 1024
    # An upstream's Retry-After is honoured up to this many seconds.
    retry_after_max: float = 300.0
    # Longest line a stream may send: translators and the usage stripper hold a line until it ends.
    max_stream_line_bytes: int = 4 * 1024 * 1024
    snapshot_poll_seconds: float = 0.5
    # /v1/models bodies this large or larger are gzipped for clients that accept it (0: never).
    gzip_min_bytes: int = 64 * 1024
    # /v1 without any key answers 401 (ELDRIC_REQUIRE_CLIENT_KEY).
    require_client_key: bool = False
    # Rate limits and budgets: in Redis at this URL (shared), or in memory when empty.
    limits_redis_url: str = ""
    limits_fail_open: bool = True
    limits_redis_timeout: float = 0.5
    limits_retry_seconds: float = 1.0
    limits_slot_lease_seconds: float = 900.0
    # Prefix of the limiter's Redis keys: deployments sharing one Redis keep apart by it.
    limits_redis_prefix: str = "eld:lim:"

    @classmethod
    def from_settings(cls) -> GatewayConfig:
        from django.conf import settings

        return cls(
            max_body_bytes=settings.ELDRIC_MAX_BODY_BYTES,
            connect_timeout=settings.ELDRIC_CONNECT_TIMEOUT,
            read_timeout=settings.ELDRIC_READ_TIMEOUT,
            write_timeout=settings.ELDRIC_WRITE_TIMEOUT,
            pool_timeout=settings.ELDRIC_POOL_TIMEOUT,
            max_connections=settings.ELDRIC_MAX_CONNECTIONS,
            max_attempts=max(1, settings.ELDRIC_MAX_ATTEMPTS),
            breaker_failures=max(1, settings.ELDRIC_BREAKER_FAILURES),
            breaker_cooldown=settings.ELDRIC_BREAKER_COOLDOWN_SECONDS,
            master_key=settings.ELDRIC_MASTER_KEY,
            transport=settings.ELDRIC_HTTP_TRANSPORT,
            request_timeout=settings.ELDRIC_REQUEST_TIMEOUT,
            stream_idle_timeout=settings.ELDRIC_STREAM_IDLE_TIMEOUT,
            max_response_bytes=settings.ELDRIC_MAX_RESPONSE_BYTES,
            retry_after_max=settings.ELDRIC_RETRY_AFTER_MAX_SECONDS,
            max_stream_line_bytes=settings.ELDRIC_MAX_STREAM_LINE_BYTES,
            snapshot_poll_seconds=settings.ELDRIC_SNAPSHOT_POLL_SECONDS,
            gzip_min_bytes=max(0, settings.ELDRIC_GZIP_MIN_BYTES),
            require_client_key=settings.ELDRIC_REQUIRE_CLIENT_KEY,
            limits_redis_url=settings.ELDRIC_LIMITS_REDIS_URL or settings.REDIS_URL,
            limits_fail_open=settings.ELDRIC_LIMITS_FAIL_OPEN,
            limits_redis_timeout=settings.ELDRIC_LIMITS_REDIS_TIMEOUT,
            limits_retry_seconds=settings.ELDRIC_LIMITS_RETRY_SECONDS,
            limits_slot_lease_seconds=settings.ELDRIC_LIMITS_SLOT_LEASE_SECONDS,
            limits_redis_prefix=settings.ELDRIC_LIMITS_REDIS_PREFIX,
        )
