"""Inbound authentication for /v1/*: open by default, a master key when configured."""

from __future__ import annotations

import hmac

from backends.providers.base import OpenAIError
from gateway.asgi_io import header
from gateway.config import config

MISSING_KEY = OpenAIError(
    401, "Missing API key. Send 'Authorization: Bearer <key>'.", type="authentication_error", code="missing_api_key"
)
INVALID_KEY = OpenAIError(401, "Invalid API key.", type="authentication_error", code="invalid_api_key")


def authenticate(scope) -> OpenAIError | None:
    """None when the request may proceed, else the error to answer with."""
    master_key = config().master_key
    if not master_key:
        return None
    raw = header(scope, b"authorization")
    if raw is None:
        return MISSING_KEY
    scheme, _, token = raw.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return MISSING_KEY
    if not hmac.compare_digest(token.strip().encode(), master_key.encode()):
        return INVALID_KEY
    return None
