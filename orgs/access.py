"""The access snapshot: an immutable, ORM-free picture of organisations, their licenses and
their client keys, which the gateway's hot path reads instead of the database.

Built by ``access_snapshot_build`` off the request path whenever ``AccessVersion`` moves
(see ``gateway.snapshot.SnapshotSource``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orgs.models import DEFAULT_ORGANISATION


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """None means unlimited."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    budget_usd: float | None = None
    budget_period: str = "month"


@dataclass(frozen=True, slots=True)
class OrgRecord:
    id: int
    slug: str
    name: str = ""
    share_default_backends: bool = True
    limits: LimitSpec = LimitSpec()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    organisation: str  # the organisation's slug
    name: str
    prefix: str
    # fnmatch patterns; empty means every model.
    models: tuple[str, ...] = ()
    limits: LimitSpec = LimitSpec()
    # Unix time; None means it never expires.
    expires_at: float | None = None


@dataclass(frozen=True, slots=True)
class AccessSnapshot:
    version: int = -1
    organisations: dict[str, OrgRecord] = field(default_factory=dict)
    # SHA-256 hex of the key -> the key. Only usable keys (enabled, not revoked) are here.
    keys: dict[str, KeyRecord] = field(default_factory=dict)
    # organisation slug -> its license state (orgs.licenses.LicenseState).
    licenses: dict[str, object] = field(default_factory=dict)

    def organisation(self, slug: str) -> OrgRecord | None:
        return self.organisations.get(slug or DEFAULT_ORGANISATION)


def access_snapshot_build() -> AccessSnapshot:
    from orgs.keys import key_records_get
    from orgs.licenses import license_states_get
    from orgs.selectors import access_version_get, organisation_records_get

    return AccessSnapshot(
        version=access_version_get(),
        organisations=organisation_records_get(),
        keys=key_records_get(),
        licenses=license_states_get(),
    )
