"""Usage records, their daily roll-ups, and model prices.

Costs are stored as whole nano-dollars (1e-9 USD, ``cost_nanos``): integer addition is exact
on SQLite and on Postgres alike, so a day's roll-up always equals the sum of its records
(SQLite keeps a DecimalField's fractions as floating point, which would drift). The models
expose them as ``Decimal`` (``cost_usd``).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

NANOS_PER_USD = 1_000_000_000


def nanos_to_usd(nanos: int | None) -> Decimal | None:
    return None if nanos is None else Decimal(nanos) / NANOS_PER_USD


class ModelPrice(models.Model):
    """List price of a model, in USD per million tokens.

    ``provider`` ties the price to the backends it applies to: a backend matches when the
    provider equals its name or its kind (``anthropic``, ``ollama``), when it is its URL's
    host or a domain of it (``api.openai.com``, ``x.ai``), or when it is one of the labels of
    its host (``openai`` matches ``api.openai.com``). Blank: any backend. ``model`` is a model
    id or an fnmatch glob (``claude-sonnet-4*``); an exact id wins over a glob.
    """

    provider = models.CharField(max_length=100, blank=True, default="", help_text="Blank: any backend.")
    model = models.CharField(max_length=255, help_text="A model id, or a glob such as gpt-5.4*.")
    input_per_million = models.DecimalField(max_digits=14, decimal_places=6, help_text="USD per 1M input tokens.")
    cached_input_per_million = models.DecimalField(
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="USD per 1M cached input tokens. Empty: billed as input.",
    )
    output_per_million = models.DecimalField(max_digits=14, decimal_places=6, help_text="USD per 1M output tokens.")
    reasoning_per_million = models.DecimalField(
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="USD per 1M reasoning tokens. Empty: billed as output.",
    )
    source_url = models.URLField(max_length=500, blank=True, default="", help_text="Where the price was read.")
    as_of = models.DateField(null=True, blank=True, help_text="When the price was read there.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model"]
        constraints = [models.UniqueConstraint(fields=["provider", "model"], name="usage_modelprice_unique")]

    def __str__(self) -> str:
        return f"{self.provider or '*'} / {self.model}"


class UsageRecord(models.Model):
    """One finished /v1 request, as the gateway saw it. Written in batches, never inline."""

    time = models.DateTimeField(db_index=True, help_text="When the request arrived (UTC).")
    request_id = models.CharField(max_length=128)
    # SET_NULL: usage outlives a deleted key; the prefix keeps it recognisable.
    key = models.ForeignKey("orgs.ClientKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    key_prefix = models.CharField(max_length=8, blank=True, default="")
    organisation = models.CharField(max_length=64, help_text="The organisation's slug.")
    model = models.CharField(max_length=255, blank=True, default="")
    backend = models.CharField(max_length=64, blank=True, default="")
    input_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    cost_nanos = models.BigIntegerField(null=True, blank=True, help_text="USD × 1e9. Empty: the model has no price.")
    unpriced = models.BooleanField(default=False, help_text="Tokens were used but the model has no price.")
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    status = models.PositiveIntegerField(default=0, help_text="HTTP status the client got; 0 when none.")
    error_code = models.CharField(max_length=64, blank=True, default="")
    instance = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-time"]
        indexes = [
            models.Index(fields=["organisation", "time"], name="usage_record_org_time"),
            models.Index(fields=["key", "time"], name="usage_record_key_time"),
        ]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.organisation} {self.model}"

    @property
    def cost_usd(self) -> Decimal | None:
        return nanos_to_usd(self.cost_nanos)


# Columns a batch adds to a day's row; the order is the order of the upsert's columns.
DAY_COUNTERS = (
    "requests",
    "errors",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_nanos",
    "unpriced_requests",
)
DAY_KEYS = ("day", "organisation", "key_ref", "model", "backend")


class UsageDay(models.Model):
    """The records of one UTC day per organisation, key, model and backend, added up in the
    same transaction as the records themselves (``INSERT … ON CONFLICT … DO UPDATE SET n = n +
    EXCLUDED.n``), so several instances writing at once never lose a request."""

    day = models.DateField()
    organisation = models.CharField(max_length=64)
    # The key's id, 0 for none. Not a foreign key: it is part of the unique row key (a NULL
    # would never conflict), and the row must survive the key's deletion.
    key_ref = models.PositiveBigIntegerField(default=0, help_text="Client key id; 0: no key.")
    key_prefix = models.CharField(max_length=8, blank=True, default="")
    model = models.CharField(max_length=255, blank=True, default="")
    backend = models.CharField(max_length=64, blank=True, default="")
    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    cost_nanos = models.BigIntegerField(default=0, help_text="USD × 1e9, of the priced requests.")
    unpriced_requests = models.PositiveBigIntegerField(default=0, help_text="Requests with tokens but no price.")

    class Meta:
        ordering = ["-day", "organisation", "key_ref", "model", "backend"]
        verbose_name = "usage per day"
        verbose_name_plural = "usage per day"
        constraints = [models.UniqueConstraint(fields=list(DAY_KEYS), name="usage_day_unique")]
        indexes = [models.Index(fields=["organisation", "day"], name="usage_day_org")]

    def __str__(self) -> str:
        return f"{self.day} {self.organisation} {self.key_prefix or '-'} {self.model}"

    @property
    def cost_usd(self) -> Decimal:
        return nanos_to_usd(self.cost_nanos)
