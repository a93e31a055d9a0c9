"""Writes for organisations, licenses and keys."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F

from orgs.change_notices import snapshot_changed_notify
from orgs.models import DEFAULT_ORGANISATION, AccessVersion, License, Organisation

logger = logging.getLogger(__name__)


def access_version_bump() -> None:
    """Call inside the transaction of any write the gateway's access snapshot depends on."""
    updated = AccessVersion.objects.filter(pk=1).update(version=F("version") + 1)
    if not updated:
        with transaction.atomic():
            AccessVersion.objects.get_or_create(pk=1)
            AccessVersion.objects.filter(pk=1).update(version=F("version") + 1)
    # Every gateway process hears of it at once when Redis is there (orgs.change_notices).
    snapshot_changed_notify("access")


def default_organisation_ensure() -> Organisation:
    org, created = Organisation.objects.get_or_create(
        slug=DEFAULT_ORGANISATION, defaults={"name": "Default organisation"}
    )
    if created:
        access_version_bump()
    return org


def license_install(*, document) -> License:
    """Verify a license document and make it its organisation's license (replacing any).

    The organisation it names is created if it does not exist yet. Raises LicenseInvalid.
    Installing the same document again changes nothing.
    """
    from orgs.license_files import document_canonical, license_verify
    from orgs.licenses import trusted_keys

    payload = license_verify(document, trusted_keys())
    stored = document_canonical(document)
    with transaction.atomic():
        organisation, _ = Organisation.objects.get_or_create(
            slug=payload.organisation, defaults={"name": payload.organisation}
        )
        existing = License.objects.select_for_update().filter(organisation=organisation).first()
        if existing is not None and existing.document == stored:
            return existing
        row = existing or License(organisation=organisation)
        row.license_id = payload.license_id
        row.tier = payload.tier
        row.overrides = payload.overrides
        row.issued_at = payload.issued_at
        row.expires_at = payload.expires_at
        row.document = stored
        row.save()
        access_version_bump()
    logger.info(
        "license %s installed for organisation %s: %s, expires %s",
        payload.license_id,
        payload.organisation,
        payload.tier,
        f"{payload.expires_at:%Y-%m-%d}",
    )
    return row


def license_install_file(*, path: str) -> License:
    """``eldric-cloudd --license FILE`` and ELDRIC_LICENSE_FILE. Raises LicenseInvalid."""
    from orgs.license_files import MAX_DOCUMENT_BYTES, LicenseInvalid

    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise LicenseInvalid(f"cannot read {path}: {exc.strerror}") from None
    return license_install(document=data)


def license_remove(*, organisation: str) -> bool:
    """Uninstall an organisation's license (it falls back to Free)."""
    with transaction.atomic():
        deleted, _ = License.objects.filter(organisation__slug=organisation).delete()
        if deleted:
            access_version_bump()
    return bool(deleted)


def default_organisation_pk() -> int:
    """The default organisation's id (a model field default: backends without an owner).

    Reads only the id, so it also works inside migrations that run before later columns exist."""
    pk = Organisation.objects.filter(slug=DEFAULT_ORGANISATION).values_list("pk", flat=True).first()
    return pk if pk is not None else default_organisation_ensure().pk
