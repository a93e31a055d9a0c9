"""Writes for organisations, licenses and keys."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F

from orgs.models import DEFAULT_ORGANISATION, AccessVersion, Organisation


def access_version_bump() -> None:
    """Call inside the transaction of any write the gateway's access snapshot depends on."""
    updated = AccessVersion.objects.filter(pk=1).update(version=F("version") + 1)
    if not updated:
        with transaction.atomic():
            AccessVersion.objects.get_or_create(pk=1)
            AccessVersion.objects.filter(pk=1).update(version=F("version") + 1)


def default_organisation_ensure() -> Organisation:
    org, created = Organisation.objects.get_or_create(
        slug=DEFAULT_ORGANISATION, defaults={"name": "Default organisation"}
    )
    if created:
        access_version_bump()
    return org
