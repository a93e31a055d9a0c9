"""Inbound authentication for /v1/*: client keys, the master key, or open.

A client key (``eld-…``) is sent as ``Authorization: Bearer <key>`` or ``x-api-key: <key>``
and looked up by its SHA-256 in the access snapshot: no ORM, no IO. ``ELDRIC_MASTER_KEY``
is the default organisation's key. Without either, /v1 stays open (the seed's behaviour)
unless ``ELDRIC_REQUIRE_CLIENT_KEY`` is set; an ``eld-`` key that is not (or no longer)
valid is refused even then, so a revoked key never falls back to anonymous access.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from backends.providers.base import OpenAIError
from gateway.context import ANONYMOUS, MASTER, Principal
from orgs.access import AccessSnapshot, KeyRecord
from orgs.keys import KEY_PREFIX, model_allowed

MISSING_KEY = OpenAIError(
    401, "Missing API key. Send 'Authorization: Bearer <key>'.", type="authentication_error", code="missing_api_key"
)
INVALID_KEY = OpenAIError(401, "Invalid API key.", type="authentication_error", code="invalid_api_key")
EXPIRED_KEY = OpenAIError(401, "This API key has expired.", type="authentication_error", code="expired_api_key")


def _token(scope) -> str | None:
    """The key the client sent, from ``Authorization: Bearer`` or ``x-api-key``; "" when a
    header is there but holds no usable key."""
    authorization = api_key = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value
        elif name == b"x-api-key":
            api_key = value
    if authorization is not None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        if api_key is None:
            return ""
    if api_key is not None:
        return api_key.decode("latin-1").strip()
    return None


def authenticate(
    scope, master_key: str, access: AccessSnapshot | None = None, *, require_key: bool = False
) -> tuple[Principal, KeyRecord | None, OpenAIError | None]:
    """Who is calling, their key's record, and the error to answer with when they may not."""
    token = _token(scope)
    if not token:
        if master_key or require_key:
            return ANONYMOUS, None, MISSING_KEY
        return ANONYMOUS, None, None
    if master_key and hmac.compare_digest(token.encode("latin-1"), master_key.encode()):
        return MASTER, None, None
    if token.startswith(KEY_PREFIX) and access is not None:
        record = access.keys.get(hashlib.sha256(token.encode("latin-1")).hexdigest())
        if record is None:
            return ANONYMOUS, None, INVALID_KEY
        if record.expires_at is not None and time.time() >= record.expires_at:
            return ANONYMOUS, None, EXPIRED_KEY
        principal = Principal("client_key", organisation=record.organisation, key_id=str(record.id), name=record.name)
        return principal, record, None
    if master_key or require_key or token.startswith(KEY_PREFIX):
        return ANONYMOUS, None, INVALID_KEY
    # Open mode: clients that must send some key (SDKs) may send anything.
    return ANONYMOUS, None, None


def model_forbidden(record: KeyRecord | None, model: str) -> OpenAIError | None:
    """The 403 for a key whose allowed models do not include ``model``."""
    if record is None or model_allowed(record.models, model):
        return None
    return OpenAIError(
        403,
        f"This API key is not allowed to use the model `{model[:256]}`.",
        type="invalid_request_error",
        param="model",
        code="model_not_allowed",
    )
