"""Hot-path settings, read once per process so requests never touch Django's settings proxy."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    max_body_bytes: int
    connect_timeout: float
    read_timeout: float
    write_timeout: float
    pool_timeout: float
    max_connections: int
    max_attempts: int
    breaker_failures: int
    breaker_cooldown: float
    master_key: str
    transport: str


@cache
def config() -> GatewayConfig:
    from django.conf import settings

    return GatewayConfig(
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
    )
