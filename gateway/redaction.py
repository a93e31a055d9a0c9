"""Keeping an upstream's key out of what the gateway passes on, even when the upstream echoes it."""

from __future__ import annotations

from backends.providers.base import OpenAIError
from backends.redaction import redact

# Upstream response headers a client needs: request ids and rate limits. Nothing else is
# passed on (cookies, server banners, internal routing headers).
FORWARDED_HEADER_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-")
FORWARDED_HEADERS = frozenset({b"request-id", b"openai-processing-ms"})
# The upstream's own request id, renamed: ``x-request-id`` is the gateway's.
UPSTREAM_REQUEST_ID = b"x-request-id"
RENAMED_REQUEST_ID = b"x-upstream-request-id"


def redacted_error(error: OpenAIError, key: str, address: str = "") -> OpenAIError:
    """The error with the key removed from every field a client sees, and the backend's
    address (``host:port``, internal for a self-hosted upstream) from its message."""
    if not key and not address:
        return error

    def clean(value):
        return redact(value, key) if isinstance(value, str) else value

    message = clean(error.message)
    if address and address in message:
        message = message.replace(address, "[backend]")

    return OpenAIError(
        error.status,
        message,
        clean(error.type),
        clean(error.param),
        clean(error.code),
        error.retry_after,
    )


def safe_headers(raw: list[tuple[bytes, bytes]], key: str) -> list[tuple[bytes, bytes]]:
    """The allow-listed upstream headers, their values scrubbed of the key."""
    secret = key.encode() if len(key) >= 4 else b""
    headers = []
    for name, value in raw:
        lowered = name.lower()
        if lowered == UPSTREAM_REQUEST_ID:
            lowered = RENAMED_REQUEST_ID
        elif lowered not in FORWARDED_HEADERS and not lowered.startswith(FORWARDED_HEADER_PREFIXES):
            continue
        headers.append((lowered, value.replace(secret, b"[redacted]") if secret and secret in value else value))
    return headers
