"""The system of record: upstream backends, their discovered models, and instance state."""

from django.db import models

from backends import crypto
from orgs.services import default_organisation_pk


class BackendKind(models.TextChoices):
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible"
    ANTHROPIC = "anthropic", "Anthropic"
    COHERE = "cohere", "Cohere"
    OLLAMA = "ollama", "Ollama"


class BackendSource(models.TextChoices):
    STATIC = "static", "Static (flags or config file)"
    API = "api", "Runtime (API or admin)"


class HealthStatus(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    HEALTHY = "healthy", "Healthy"
    UNHEALTHY = "unhealthy", "Unhealthy"
    AUTH_FAILED = "auth_failed", "Auth failed"


class Backend(models.Model):
    # Names stay unique across organisations: they appear in /health, metrics and logs.
    name = models.SlugField(max_length=64, unique=True)
    # Static backends (flags, config file) belong to the default organisation; its license
    # is the installation's. Requests of other organisations reach them only if shared.
    organisation = models.ForeignKey(
        "orgs.Organisation", related_name="backends", on_delete=models.PROTECT, default=default_organisation_pk
    )
    kind = models.CharField(max_length=32, choices=BackendKind.choices, default=BackendKind.OPENAI_COMPATIBLE)
    # Validated by the API and admin (http or https, any host name, e.g. "http://ollama:11434").
    url = models.CharField(max_length=500)
    api_key_encrypted = models.TextField(blank=True, default="")
    api_key_hint = models.CharField(max_length=32, blank=True, default="")
    priority = models.PositiveIntegerField(default=100, help_text="Lower wins.")
    enabled = models.BooleanField(default=True)
    # What the flags or config file last said about ``enabled``. An operator's runtime
    # enable/disable of a static backend sticks until the configuration itself changes it.
    config_enabled = models.BooleanField(null=True, blank=True, editable=False)
    headers = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=16, choices=BackendSource.choices, default=BackendSource.API)
    # A static backend's place in the flags/config file: Free routes by configuration order
    # (this, then creation order for runtime backends) instead of by priority.
    config_position = models.PositiveIntegerField(null=True, blank=True, editable=False)
    # ELDRIC_INSTANCE names. A static backend: the instances whose flags or config file
    # declare it (never empty). A runtime backend: the instances it is pinned to; empty
    # means every instance. Either way, an instance routes to a backend only if listed here
    # or the list is empty.
    instances = models.JSONField(default=list, blank=True)
    # Serves OpenAI's Responses API itself, so /v1/responses is passed through instead of being
    # translated to chat. Null: the provider's preset decides (OpenAI and xAI do).
    responses_api = models.BooleanField(
        null=True, blank=True, default=None, help_text="Serves /v1/responses itself; empty: the preset's default."
    )

    health_status = models.CharField(max_length=16, choices=HealthStatus.choices, default=HealthStatus.UNKNOWN)
    latency_ms = models.FloatField(null=True, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Counts successful probes. The gateway's circuit breaker compares it with the count it
    # saw when a circuit opened, so no clock is compared across machines.
    healthy_probe_count = models.PositiveBigIntegerField(default=0, editable=False)
    next_check_at = models.DateTimeField(null=True, blank=True, db_index=True)
    models_refreshed_at = models.DateTimeField(null=True, blank=True)
    # Discovery's compare-and-swap (``backends_claim_discovery``): one run per interval across workers.
    next_discovery_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    def set_api_key(self, raw: str) -> None:
        self.api_key_encrypted = crypto.encrypt(raw) if raw else ""
        self.api_key_hint = crypto.mask(raw)

    def serves(self, instance: str) -> bool:
        """Whether the instance named ``instance`` routes to this backend."""
        return pinned_to_serve(self.instances, instance)


def pinned_to_serve(instances: list[str] | None, instance: str) -> bool:
    """A backend pinned to ``instances`` (none: every instance) is routed to by ``instance``."""
    return not instances or instance in instances


class DiscoveredModel(models.Model):
    backend = models.ForeignKey(Backend, related_name="models", on_delete=models.CASCADE)
    model_id = models.CharField(max_length=255)
    # What the model is for (``backends.capabilities``): chat, completion, embedding, rerank,
    # image, audio or moderation, as the provider or the id says; "" when neither does (listed as
    # chat, refused nowhere).
    capability = models.CharField(
        max_length=16, blank=True, default="", help_text="chat, embedding, rerank, …; empty: unknown."
    )
    created = models.BigIntegerField(null=True, blank=True)
    discovered_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["backend__priority", "model_id"]
        constraints = [models.UniqueConstraint(fields=["backend", "model_id"], name="unique_model_per_backend")]

    def __str__(self) -> str:
        return f"{self.model_id} @ {self.backend_id}"


class GatewaySettings(models.Model):
    """Installation-wide state; a single row (pk=1). Per-instance settings (default backend,
    health interval, controller URL) live on ``WorkerIdentity``."""

    # Bumped in the same transaction as every routing-relevant write. Gateway processes
    # poll it to know when to rebuild their in-memory snapshot.
    routing_version = models.BigIntegerField(default=0)
    # SHA-256 of the generated admin token for /api/v1 (ELDRIC_ADMIN_TOKEN, when set, wins).
    # The token itself is shown once and never stored.
    admin_token_hash = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        verbose_name_plural = "gateway settings"

    def __str__(self) -> str:
        return "Gateway settings"


DEFAULT_HEALTH_INTERVAL_MS = 60_000


class WorkerIdentity(models.Model):
    """One row per instance name (ELDRIC_INSTANCE), so several instances can share one
    database: its ``cld-`` id and the settings its flags or config file give it."""

    instance = models.CharField(max_length=64, unique=True)
    worker_id = models.CharField(max_length=12, unique=True)
    # Per instance: the last instance to start no longer overwrites the others' settings.
    default_backend = models.CharField(max_length=64, blank=True, default="")
    health_interval_ms = models.PositiveIntegerField(default=DEFAULT_HEALTH_INTERVAL_MS)
    controller_url = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped by the running instance's heartbeat; instances seen in the last
    # ELDRIC_INSTANCE_LIVE_SECONDS count against the license's cloud-worker limit.
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # What the running process said of itself at its last beat (``backends.heartbeat``):
    # start time, load, and its controller client's state. Plain values, never a secret.
    report = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.worker_id


class AuditSource(models.TextChoices):
    API = "api", "API"
    ADMIN = "admin", "Django admin"
    CONFIG = "config", "Flags or config file"
    SYSTEM = "system", "System"


class AuditAction(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    ENABLE = "enable", "Enable"
    DISABLE = "disable", "Disable"
    ROTATE_ADMIN_TOKEN = "rotate_admin_token", "Rotate admin token"


class AuditLog(models.Model):
    """Who changed which backend, when, how and from where. Secrets appear only masked."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, help_text="A username, 'admin-token', 'config' or 'system'.")
    source = models.CharField(max_length=16, choices=AuditSource.choices)
    action = models.CharField(max_length=32, choices=AuditAction.choices)
    # A name, not a foreign key: the record outlives the backend it describes.
    backend_name = models.CharField(max_length=64, blank=True, default="", db_index=True)
    # {field: [old, new]}; None stands for "absent" (old on create, new on delete).
    changes = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} {self.backend_name} by {self.actor} ({self.source})"
