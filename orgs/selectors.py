"""Reads for organisations, licenses and keys. The access snapshot is built here."""

from __future__ import annotations

from orgs.access import LimitSpec, OrgRecord
from orgs.models import AccessVersion, Organisation


def access_version_get() -> int:
    version = AccessVersion.objects.filter(pk=1).values_list("version", flat=True).first()
    return version if version is not None else 0


def limit_spec(row) -> LimitSpec:
    return LimitSpec(
        rpm=row.rpm,
        tpm=row.tpm,
        max_concurrent=row.max_concurrent,
        budget_usd=float(row.budget_usd) if row.budget_usd is not None else None,
        budget_period=row.budget_period,
    )


def organisation_records_get() -> dict[str, OrgRecord]:
    return {
        org.slug: OrgRecord(
            id=org.id,
            slug=org.slug,
            name=org.name,
            share_default_backends=org.share_default_backends,
            limits=limit_spec(org),
        )
        for org in Organisation.objects.all()
    }


def organisation_sharing_get() -> dict[str, bool]:
    """slug -> whether its requests may also use the default organisation's backends."""
    return dict(Organisation.objects.values_list("slug", "share_default_backends"))


def organisation_exists(slug: str) -> bool:
    return Organisation.objects.filter(slug=slug).exists()
