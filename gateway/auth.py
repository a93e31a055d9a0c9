"""Inbound authentication for /v1/*: open by default, a master key when configured."""

from __future__ import annotations

import hmac

from backends.providers.base import OpenAIError
from gateway.asgi_io import header
from gateway.context import ANONYMOUS, MASTER, Principal

MISSING_KEY = OpenAIError(
    401, "Missing API key. Send 'Authorization: Bearer <key>'.", type="authentication_error", code="missing_api_key"
)
INVALID_KEY = OpenAIError(401, "Invalid API key.", type="authentication_error", code="invalid_api_key")


def authenticate(scope, master_key: str) -> tuple[Principal, OpenAIError | None]:
    """Who is calling, and the error to answer with when they may not."""
    if not master_key:
        return ANONYMOUS, None
    raw = header(scope, b"authorization")
    if raw is None:
        return ANONYMOUS, MISSING_KEY
    scheme, _, token = raw.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return ANONYMOUS, MISSING_KEY
    if not hmac.compare_digest(token.strip().encode("latin-1"), master_key.encode()):
        return ANONYMOUS, INVALID_KEY
    return MASTER, None
