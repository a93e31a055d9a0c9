"""Client keys: creation, revocation and the records the access snapshot holds.

A key is ``eld-`` plus 40 random characters. Only its SHA-256 is stored, with the first 8
characters after ``eld-`` for display; the key itself is returned once, by ``key_create``.
Every write bumps the access version in its transaction, so each gateway process swaps in
a snapshot without the key (or with its new limits) at its next poll.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from orgs.access import KeyRecord, LimitSpec
from orgs.models import DEFAULT_ORGANISATION, BudgetPeriod, ClientKey, Organisation
from orgs.services import access_version_bump

KEY_PREFIX = "eld-"
KEY_RANDOM_LENGTH = 40
# Letters and digits only: a key survives double-clicking, shells and URLs unchanged.
KEY_ALPHABET = string.ascii_letters + string.digits
DISPLAY_PREFIX_LENGTH = 8
LIMIT_FIELDS = ("rpm", "tpm", "max_concurrent", "budget_usd", "budget_period")


class KeyInvalid(ValueError):
    """A key field fails validation; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class CreatedKey:
    record: ClientKey
    # The key itself: shown once, never stored.
    key: str


def key_generate() -> str:
    return KEY_PREFIX + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_RANDOM_LENGTH))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_client_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def key_display(record: ClientKey) -> str:
    return f"{KEY_PREFIX}{record.prefix}…"


# --- validation ------------------------------------------------------------------------------
def _clean_models(models) -> list[str]:
    if models is None:
        return []
    if not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models):
        raise KeyInvalid("models", "models must be a list of non-empty glob patterns, e.g. ['gpt-4o*'].")
    if len(models) > 1000 or any(len(m) > 256 for m in models):
        raise KeyInvalid("models", "models holds at most 1000 patterns of at most 256 characters.")
    return [m.strip() for m in models]


def _clean_limits(values: dict) -> dict:
    cleaned = {}
    for name in ("rpm", "tpm", "max_concurrent"):
        if name in values:
            value = values[name]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise KeyInvalid(name, f"{name} must be a positive integer or null (unlimited).")
            if value is not None and value > 2**31 - 1:
                raise KeyInvalid(name, f"{name} is too large.")
            cleaned[name] = value
    if "budget_usd" in values:
        value = values["budget_usd"]
        if value is not None:
            try:
                from decimal import Decimal, InvalidOperation

                value = Decimal(str(value))
            except (InvalidOperation, ValueError):
                raise KeyInvalid("budget_usd", "budget_usd must be a number of US dollars or null.") from None
            if not value.is_finite() or value < 0 or value >= Decimal(10) ** 10:
                raise KeyInvalid("budget_usd", "budget_usd must be between 0 and 9999999999.")
        cleaned["budget_usd"] = value
    if "budget_period" in values:
        value = values["budget_period"]
        if value not in BudgetPeriod.values:
            raise KeyInvalid("budget_period", "budget_period must be 'day' or 'month'.")
        cleaned["budget_period"] = value
    return cleaned


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise KeyInvalid("name", "name is required.")
    if len(name) > 200:
        raise KeyInvalid("name", "name is longer than 200 characters.")
    return name.strip()


def _clean_expiry(expires_at) -> datetime | None:
    if expires_at is None:
        return None
    if not isinstance(expires_at, datetime):
        raise KeyInvalid("expires_at", "expires_at must be a date-time.")
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at, timezone.utc)
    return expires_at


# --- services --------------------------------------------------------------------------------
def key_create(
    *,
    name: str,
    organisation: str = DEFAULT_ORGANISATION,
    models: list[str] | None = None,
    expires_at: datetime | None = None,
    **limits,
) -> CreatedKey:
    unknown = set(limits) - set(LIMIT_FIELDS)
    if unknown:
        raise KeyInvalid(sorted(unknown)[0], f"unknown field {sorted(unknown)[0]!r}.")
    fields = {
        "name": _clean_name(name),
        "allowed_models": _clean_models(models),
        "expires_at": _clean_expiry(expires_at),
        **_clean_limits(limits),
    }
    with transaction.atomic():
        org = Organisation.objects.filter(slug=organisation or DEFAULT_ORGANISATION).first()
        if org is None:
            raise KeyInvalid("organisation", f"no organisation {organisation!r}.")
        while True:
            key = key_generate()
            digest = key_hash(key)
            if not ClientKey.objects.filter(key_hash=digest).exists():
                break
        record = ClientKey.objects.create(
            organisation=org, prefix=key[len(KEY_PREFIX) :][:DISPLAY_PREFIX_LENGTH], key_hash=digest, **fields
        )
        access_version_bump()
    return CreatedKey(record=record, key=key)


def key_update(record: ClientKey, **changes) -> ClientKey:
    """Change a key's name, models, limits, expiry or ``enabled``. A revoked key stays revoked."""
    allowed = {"name", "models", "expires_at", "enabled", *LIMIT_FIELDS}
    unknown = set(changes) - allowed
    if unknown:
        raise KeyInvalid(sorted(unknown)[0], f"{sorted(unknown)[0]!r} cannot be changed.")
    updates = _clean_limits(changes)
    if "name" in changes:
        updates["name"] = _clean_name(changes["name"])
    if "models" in changes:
        updates["allowed_models"] = _clean_models(changes["models"])
    if "expires_at" in changes:
        updates["expires_at"] = _clean_expiry(changes["expires_at"])
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise KeyInvalid("enabled", "enabled must be true or false.")
        updates["enabled"] = changes["enabled"]
    if not updates:
        return record
    with transaction.atomic():
        for field, value in updates.items():
            setattr(record, field, value)
        record.save(update_fields=list(updates))
        access_version_bump()
    return record


def key_revoke(record: ClientKey) -> ClientKey:
    """Revoke for good: the key stops working in every gateway process at its next poll."""
    if record.revoked_at is not None:
        return record
    with transaction.atomic():
        record.revoked_at = timezone.now()
        record.enabled = False
        record.save(update_fields=["revoked_at", "enabled"])
        access_version_bump()
    return record


# --- selectors -------------------------------------------------------------------------------
def key_get(key_id) -> ClientKey | None:
    try:
        return ClientKey.objects.select_related("organisation").filter(pk=int(key_id)).first()
    except (TypeError, ValueError):
        return None


def key_list(*, organisation: str | None = None, include_revoked: bool = True):
    keys = ClientKey.objects.select_related("organisation")
    if organisation:
        keys = keys.filter(organisation__slug=organisation)
    if not include_revoked:
        keys = keys.filter(revoked_at__isnull=True)
    return keys.order_by("id")


def key_status(record: ClientKey, now: datetime | None = None) -> str:
    if record.revoked_at is not None:
        return "revoked"
    if not record.enabled:
        return "disabled"
    if record.expires_at is not None and record.expires_at <= (now or timezone.now()):
        return "expired"
    return "active"


KEY_RECORD_COLUMNS = (
    "key_hash",
    "id",
    "organisation__slug",
    "name",
    "prefix",
    "models_text",
    "rpm",
    "tpm",
    "max_concurrent",
    "budget_usd",
    "budget_period",
    "expires_at",
)


def key_records_get() -> dict[str, KeyRecord]:
    """SHA-256 hex -> record, for every key that may be used (enabled, not revoked). Expired
    keys stay in: the gateway answers them 401 "expired" at the moment they expire.

    Read as plain column values, not model instances: with 100k keys this runs on every access
    change, and building a ``ClientKey`` and an ``Organisation`` per row cost ten times more
    than the records themselves. Equal limits and model lists share one object."""
    usable = (
        ClientKey.objects.filter(Q(enabled=True) & Q(revoked_at__isnull=True))
        # The model list as its JSON text, decoded once per distinct list below, not per row.
        .annotate(models_text=Cast("allowed_models", TextField()))
        .values_list(*KEY_RECORD_COLUMNS)
    )
    limits: dict[tuple, LimitSpec] = {}
    patterns: dict[str | None, tuple[str, ...]] = {}
    records = {}
    for key_hash, key_id, org, name, prefix, models, rpm, tpm, concurrent, budget, period, expires in usable.iterator(
        chunk_size=5000
    ):
        spec = (rpm, tpm, concurrent, None if budget is None else float(budget), period)
        if spec not in limits:
            limits[spec] = LimitSpec(*spec)
        if models not in patterns:
            patterns[models] = tuple(json.loads(models) or ()) if models else ()
        records[key_hash] = KeyRecord(
            id=key_id,
            organisation=org,
            name=name,
            prefix=prefix,
            models=patterns[models],
            limits=limits[spec],
            expires_at=expires.timestamp() if expires is not None else None,
        )
    return records


def model_allowed(patterns: tuple[str, ...], model: str) -> bool:
    """Whether a key with these glob patterns may use ``model`` (no patterns: every model)."""
    return not patterns or any(fnmatch.fnmatchcase(model, pattern) for pattern in patterns)
