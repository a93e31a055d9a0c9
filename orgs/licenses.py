"""Each organisation's license state, and the installation's license for ``/health``.

A ``LicenseState`` is built from the database with the signature verified at build time (so
a key removed from ``ELDRIC_LICENSE_PUBLIC_KEYS`` stops being honoured at the next build). The
effective tier at a moment is a method: expiry and the end of the grace period need no
rebuild, and tests pass a frozen ``now``.

No license, an invalid one, or one expired past its grace period means Free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings

from orgs.license_files import LicenseInvalid, license_verify, public_keys_parse
from orgs.license_tiers import TierLimits, tier_label, tier_limits
from orgs.models import DEFAULT_ORGANISATION, License, Tier

# status values
NONE, INVALID, VALID, GRACE, EXPIRED = "none", "invalid", "valid", "grace", "expired"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class LicenseState:
    organisation: str
    # The tier the license names (Free when there is none or it does not verify).
    tier: str = Tier.FREE
    license_id: str = ""
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    overrides: dict = field(default_factory=dict)
    grace_days: int = 14
    # Why an installed license is not honoured; "" when it verifies (or none is installed).
    error: str = ""

    @property
    def installed(self) -> bool:
        return bool(self.license_id) and not self.error

    @property
    def grace_until(self) -> datetime | None:
        return self.expires_at + timedelta(days=self.grace_days) if self.expires_at else None

    def status(self, now: datetime | None = None) -> str:
        if self.error:
            return INVALID
        if not self.license_id:
            return NONE
        now = now or utcnow()
        if now < self.expires_at:
            return VALID
        return GRACE if now < self.grace_until else EXPIRED

    def effective_tier(self, now: datetime | None = None) -> str:
        return self.tier if self.status(now) in (VALID, GRACE) else Tier.FREE

    def limits(self, now: datetime | None = None) -> TierLimits:
        status = self.status(now)
        if status in (VALID, GRACE):
            return tier_limits(self.tier, self.overrides)
        return tier_limits(Tier.FREE)

    def warning(self, now: datetime | None = None) -> str:
        """What an operator must know, or "" when all is well."""
        status = self.status(now)
        label = tier_label(self.tier)
        if status == GRACE:
            return (
                f"The {label} license {self.license_id} of organisation '{self.organisation}' expired on "
                f"{self.expires_at:%Y-%m-%d}; it stays in force until {self.grace_until:%Y-%m-%d} (grace period), "
                "then Free limits apply to changes. Install a renewed license."
            )
        if status == EXPIRED:
            return (
                f"The {label} license {self.license_id} of organisation '{self.organisation}' expired on "
                f"{self.expires_at:%Y-%m-%d} and its grace period has ended: Free limits apply to changes."
            )
        if status == INVALID:
            return f"The license of organisation '{self.organisation}' is not honoured ({self.error}): Free applies."
        return ""

    def describe(self, now: datetime | None = None) -> dict:
        """For the management API and the admin."""
        now = now or utcnow()
        limits = self.limits(now)
        return {
            "organisation": self.organisation,
            "status": self.status(now),
            "tier": self.effective_tier(now),
            "licensed_tier": self.tier if self.license_id else None,
            "license_id": self.license_id or None,
            "issued_at": _iso(self.issued_at),
            "expires_at": _iso(self.expires_at),
            "grace_until": _iso(self.grace_until),
            "overrides": dict(self.overrides),
            "limits": {
                "cloud_workers": limits.cloud_workers,
                "backends": limits.backends,
                "auto_discovery": limits.auto_discovery,
                "priority_routing": limits.priority_routing,
                "health_monitoring": limits.health_monitoring,
                "dashboard": limits.dashboard,
                "runtime_backends": limits.runtime_backends,
            },
            "warning": self.warning(now),
            "error": self.error,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def trusted_keys():
    return public_keys_parse(list(settings.ELDRIC_LICENSE_PUBLIC_KEYS))


def license_state_build(row: License, slug: str, keys) -> LicenseState:
    """The state of an installed license, re-verified now (keys rotate; rows can be edited)."""
    grace = settings.ELDRIC_LICENSE_GRACE_DAYS
    try:
        if isinstance(keys, LicenseInvalid):
            raise keys
        payload = license_verify(row.document, keys)
        if payload.organisation != slug:
            raise LicenseInvalid(f"it was issued for organisation '{payload.organisation}'")
    except LicenseInvalid as exc:
        return LicenseState(organisation=slug, license_id=row.license_id, grace_days=grace, error=str(exc))
    return LicenseState(
        organisation=slug,
        tier=payload.tier,
        license_id=payload.license_id,
        issued_at=payload.issued_at,
        expires_at=payload.expires_at,
        overrides=payload.overrides,
        grace_days=grace,
    )


def _keys_or_error():
    try:
        return trusted_keys()
    except LicenseInvalid as exc:
        return exc


def license_states_get() -> dict[str, LicenseState]:
    """organisation slug -> license state, for every organisation with a license installed.
    Organisations missing from the result have none (Free): see ``license_state_for``."""
    keys = _keys_or_error()
    rows = License.objects.select_related("organisation")
    return {row.organisation.slug: license_state_build(row, row.organisation.slug, keys) for row in rows}


def license_state_get(slug: str = DEFAULT_ORGANISATION) -> LicenseState:
    """One organisation's state, read now (for writes: API, admin, start-up)."""
    slug = slug or DEFAULT_ORGANISATION
    row = License.objects.filter(organisation__slug=slug).first()
    if row is None:
        return LicenseState(organisation=slug, grace_days=settings.ELDRIC_LICENSE_GRACE_DAYS)
    return license_state_build(row, slug, _keys_or_error())


def license_state_for(states: dict, slug: str) -> LicenseState:
    slug = slug or DEFAULT_ORGANISATION
    return states.get(slug) or LicenseState(organisation=slug, grace_days=settings.ELDRIC_LICENSE_GRACE_DAYS)


def license_health(access, now: datetime | None = None) -> dict:
    """The installation's license (the default organisation's) for ``/health``:
    ``{"tier", "expires_at"}``, plus ``grace_until`` and ``warning`` while in grace (and a
    ``warning`` once expired or when the installed license does not verify)."""
    state = access.licenses.get(DEFAULT_ORGANISATION)
    if state is None:
        return {"tier": Tier.FREE.value, "expires_at": None}
    now = now or utcnow()
    status = state.status(now)
    report = {"tier": str(state.effective_tier(now)), "expires_at": _iso(state.expires_at)}
    if status == GRACE:
        report["grace_until"] = _iso(state.grace_until)
    if status in (GRACE, EXPIRED, INVALID):
        report["warning"] = state.warning(now)
    return report
