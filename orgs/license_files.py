"""License files: signed JSON (Ed25519, through ``cryptography``).

A file is one JSON object, so it survives copy and paste (into the admin, a curl body, an
environment's secret store)::

    {"payload": {"format": "eldric-license/1", "license_id": "lic-…", "organisation": "default",
                 "tier": "professional", "overrides": {}, "issued_at": "2026-12-01T00:00:00Z",
                 "expires_at": "2027-12-01T00:00:00Z"},
     "signature": "<base64 Ed25519 signature of the canonical payload>"}

The canonical payload is its JSON with sorted keys, no whitespace and ASCII escapes, so
re-indenting or re-ordering the file does not break the signature; changing a value does.
Nothing here touches the database.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from orgs.license_tiers import overrides_check
from orgs.models import Tier

FORMAT = "eldric-license/1"
SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")
# A license file is small; anything bigger is not one (and is not parsed).
MAX_DOCUMENT_BYTES = 64 * 1024


class LicenseInvalid(ValueError):
    """The document is not a license this deployment accepts. The message names the problem,
    never a key."""


@dataclass(frozen=True, slots=True)
class LicensePayload:
    license_id: str
    organisation: str
    tier: str
    issued_at: datetime
    expires_at: datetime
    overrides: dict = field(default_factory=dict)


def canonical_json(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value, name: str) -> datetime:
    if not isinstance(value, str):
        raise LicenseInvalid(f"payload.{name} must be an ISO 8601 date-time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise LicenseInvalid(f"payload.{name} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise LicenseInvalid(f"payload.{name} must carry a time zone (e.g. a trailing Z)")
    return moment.astimezone(UTC)


# --- Keys ------------------------------------------------------------------------------------


def keypair_generate() -> tuple[bytes, str]:
    """(PEM of a new private key, base64 of its raw public key)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, public_key_b64(private)


def public_key_b64(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def private_key_load(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise LicenseInvalid("not a PEM private key (as written by license_keygen)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LicenseInvalid("not an Ed25519 private key")
    return key


def public_keys_parse(values: list[str]) -> list[Ed25519PublicKey]:
    keys = []
    for position, value in enumerate(v.strip() for v in values):
        if not value:
            continue
        try:
            raw = base64.b64decode(value, validate=True)
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
        except (binascii.Error, ValueError):
            raise LicenseInvalid(
                f"ELDRIC_LICENSE_PUBLIC_KEYS entry {position + 1} is not a base64 Ed25519 public key"
            ) from None
    return keys


# --- Issuing and verifying ---------------------------------------------------------------------


def license_sign(
    private: Ed25519PrivateKey,
    *,
    organisation: str,
    tier: str,
    days: int,
    overrides: dict | None = None,
    now: datetime | None = None,
    license_id: str | None = None,
) -> str:
    """A signed license document (JSON text, ending in a newline)."""
    if not SLUG.match(organisation):
        raise LicenseInvalid("organisation must be a slug (letters, digits, '-' or '_')")
    if tier not in Tier.values:
        raise LicenseInvalid(f"tier must be one of {', '.join(Tier.values)}")
    if days < 1:
        raise LicenseInvalid("days must be at least 1")
    if problem := overrides_check(overrides or {}):
        raise LicenseInvalid(problem)
    issued = (now or datetime.now(UTC)).replace(microsecond=0)
    payload = {
        "format": FORMAT,
        "license_id": license_id or f"lic-{secrets.token_hex(8)}",
        "organisation": organisation,
        "tier": tier,
        "overrides": overrides or {},
        "issued_at": _iso(issued),
        "expires_at": _iso(issued + timedelta(days=days)),
    }
    signature = base64.b64encode(private.sign(canonical_json(payload))).decode()
    return json.dumps({"payload": payload, "signature": signature}, indent=2, sort_keys=True) + "\n"


def document_parse(text: str | bytes | dict) -> dict:
    """The document as a JSON object (not yet verified)."""
    if isinstance(text, dict):
        return text
    if isinstance(text, bytes):
        if len(text) > MAX_DOCUMENT_BYTES:
            raise LicenseInvalid("too large to be a license file")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise LicenseInvalid("not UTF-8 text") from None
    if len(text) > MAX_DOCUMENT_BYTES:
        raise LicenseInvalid("too large to be a license file")
    try:
        document = json.loads(text)
    except ValueError:
        raise LicenseInvalid("not JSON (a license file is one JSON object)") from None
    if not isinstance(document, dict):
        raise LicenseInvalid("a license file is one JSON object with payload and signature")
    return document


def license_verify(document: str | bytes | dict, public_keys: list[Ed25519PublicKey]) -> LicensePayload:
    """The payload of a document signed by one of ``public_keys``; raises LicenseInvalid."""
    document = document_parse(document)
    payload, signature = document.get("payload"), document.get("signature")
    if not isinstance(payload, dict) or not isinstance(signature, str):
        raise LicenseInvalid("a license file has a payload object and a base64 signature")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise LicenseInvalid("the signature is not base64") from None
    if not public_keys:
        raise LicenseInvalid("no trusted license key is configured (ELDRIC_LICENSE_PUBLIC_KEYS)")
    signed = canonical_json(payload)
    for key in public_keys:
        try:
            key.verify(raw_signature, signed)
            break
        except InvalidSignature:
            continue
    else:
        raise LicenseInvalid("the signature does not verify with any key in ELDRIC_LICENSE_PUBLIC_KEYS")
    return payload_check(payload)


def payload_check(payload: dict) -> LicensePayload:
    """Signed is not enough: the content must also make sense."""
    if payload.get("format") != FORMAT:
        raise LicenseInvalid(f"payload.format must be {FORMAT!r}")
    license_id, organisation, tier = payload.get("license_id"), payload.get("organisation"), payload.get("tier")
    if not isinstance(license_id, str) or not 0 < len(license_id) <= 64:
        raise LicenseInvalid("payload.license_id must be a string of 1-64 characters")
    if not isinstance(organisation, str) or not SLUG.match(organisation):
        raise LicenseInvalid("payload.organisation must be an organisation slug")
    if tier not in Tier.values:
        raise LicenseInvalid(f"payload.tier must be one of {', '.join(Tier.values)}")
    overrides = payload.get("overrides", {})
    if problem := overrides_check(overrides):
        raise LicenseInvalid(f"payload.{problem}")
    issued_at = _parse_time(payload.get("issued_at"), "issued_at")
    expires_at = _parse_time(payload.get("expires_at"), "expires_at")
    if expires_at <= issued_at:
        raise LicenseInvalid("payload.expires_at must be after issued_at")
    return LicensePayload(
        license_id=license_id,
        organisation=organisation,
        tier=tier,
        issued_at=issued_at,
        expires_at=expires_at,
        overrides=dict(overrides),
    )


def document_canonical(document: str | bytes | dict) -> str:
    """The form stored in the database: what was signed, re-serialised the same way every time."""
    parsed = document_parse(document)
    return json.dumps(
        {"payload": parsed.get("payload"), "signature": parsed.get("signature")}, indent=2, sort_keys=True
    )
