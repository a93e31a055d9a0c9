"""Organisations, their license and their client keys.

Below ``backends`` in the dependency order: a backend belongs to an organisation, so this app
imports nothing from ``backends``, ``gateway`` or ``usage``.
"""

from django.db import models

DEFAULT_ORGANISATION = "default"


class Tier(models.TextChoices):
    FREE = "free", "Free"
    STANDARD = "standard", "Standard"
    PROFESSIONAL = "professional", "Professional"
    ENTERPRISE = "enterprise", "Enterprise"


class BudgetPeriod(models.TextChoices):
    DAY = "day", "Day"
    MONTH = "month", "Month"


class Limits(models.Model):
    """Rate limits and a budget; empty means unlimited."""

    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute.")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute.")
    max_concurrent = models.PositiveIntegerField(null=True, blank=True, help_text="Requests in flight at once.")
    budget_usd = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    budget_period = models.CharField(max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)

    class Meta:
        abstract = True


class Organisation(Limits):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    # Whether this organisation's requests may also use the default organisation's backends.
    share_default_backends = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug

    @property
    def is_default(self) -> bool:
        return self.slug == DEFAULT_ORGANISATION


class License(models.Model):
    """The verified content of an installed license file (one per organisation)."""

    organisation = models.OneToOneField(Organisation, related_name="license", on_delete=models.CASCADE)
    license_id = models.CharField(max_length=64)
    tier = models.CharField(max_length=16, choices=Tier.choices)
    # Limit overrides, e.g. {"backends": 30}; keys are the tier table's limit names.
    overrides = models.JSONField(default=dict, blank=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    # The signed file as installed, re-verified whenever it is loaded.
    document = models.TextField()
    installed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.get_tier_display()} license {self.license_id}"


class ClientKey(Limits):
    """A key for /v1. Only its SHA-256 is stored; the key itself is shown once."""

    organisation = models.ForeignKey(Organisation, related_name="keys", on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    # The first 8 characters after "eld-", for display: "eld-AbCd1234…".
    prefix = models.CharField(max_length=8, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # Glob patterns (fnmatch) of the models the key may use; empty means every model.
    allowed_models = models.JSONField(default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["organisation__slug", "name"]

    def __str__(self) -> str:
        return f"{self.name} (eld-{self.prefix}…)"


class AccessVersion(models.Model):
    """A single row (pk=1). Bumped in the same transaction as every write that changes who may
    call what (organisations, licenses, keys, prices): gateway processes poll it to rebuild
    their in-memory access snapshot, which is how a revoked key stops working within 1 s."""

    version = models.BigIntegerField(default=0)
