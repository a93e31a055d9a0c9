"""Traffic roll-ups and live backend state.

Several instances may share one database: every roll-up row is only ever *added to*
(``INSERT … ON CONFLICT … DO UPDATE SET n = n + EXCLUDED.n``, see ``services``), so writers
never overwrite each other. Labels are bounded: ``backend`` is a configured backend ("" when
none was reached) and ``model`` a catalogue model or "other".
"""

from django.db import models

from traffic.buckets import LATENCY_BUCKETS

# Whole-number columns a flush adds to; the order is the order of the upsert's columns.
COUNT_FIELDS = (
    "requests",
    "errors",
    "errors_4xx",
    "errors_5xx",
    "failovers",
    "client_disconnects",
    "streams",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "latency_count",
    "ttft_count",
)
SUM_FIELDS = ("latency_sum", "ttft_sum", "overhead_sum")
LATENCY_FIELDS = tuple(f"latency_b{i:02d}" for i in range(LATENCY_BUCKETS))
TTFT_FIELDS = tuple(f"ttft_b{i:02d}" for i in range(LATENCY_BUCKETS))
ADDED_FIELDS = COUNT_FIELDS + SUM_FIELDS + LATENCY_FIELDS + TTFT_FIELDS


class RollupCounters(models.Model):
    """What one (period, backend, model) saw. Latency and time to first byte are kept as
    sums plus per-bucket counts (``traffic.buckets``), so p50/p95 work over any window."""

    backend = models.CharField(max_length=64, blank=True, default="")
    model = models.CharField(max_length=255, default="other")

    requests = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0, help_text="Answers with status >= 400, or none at all.")
    errors_4xx = models.PositiveBigIntegerField(default=0)
    errors_5xx = models.PositiveBigIntegerField(default=0)
    failovers = models.PositiveBigIntegerField(default=0, help_text="Attempts on this backend that handed over.")
    client_disconnects = models.PositiveBigIntegerField(default=0)
    streams = models.PositiveBigIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    reasoning_tokens = models.PositiveBigIntegerField(default=0)
    latency_count = models.PositiveBigIntegerField(default=0)
    latency_sum = models.FloatField(default=0.0, help_text="Seconds.")
    ttft_count = models.PositiveBigIntegerField(default=0)
    ttft_sum = models.FloatField(default=0.0, help_text="Seconds until the first byte reached the client.")
    overhead_sum = models.FloatField(default=0.0, help_text="Seconds the gateway itself added.")

    # One column per histogram bucket keeps each increment a plain atomic addition.
    for _name in LATENCY_FIELDS + TTFT_FIELDS:
        vars()[_name] = models.PositiveBigIntegerField(default=0)
    del _name

    class Meta:
        abstract = True


class TrafficMinute(RollupCounters):
    bucket = models.DateTimeField(help_text="Start of the minute (UTC).")

    class Meta:
        ordering = ["-bucket", "backend", "model"]
        constraints = [
            models.UniqueConstraint(fields=["bucket", "backend", "model"], name="traffic_minute_unique"),
        ]
        indexes = [models.Index(fields=["backend", "bucket"], name="traffic_minute_backend")]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.backend or '-'} {self.model}"


class TrafficDay(RollupCounters):
    day = models.DateField(help_text="UTC day.")

    class Meta:
        ordering = ["-day", "backend", "model"]
        constraints = [models.UniqueConstraint(fields=["day", "backend", "model"], name="traffic_day_unique")]

    def __str__(self) -> str:
        return f"{self.day} {self.backend or '-'} {self.model}"


class EventKind(models.TextChoices):
    ERROR = "error", "Error answered to the client"
    FAILOVER = "failover", "Failed attempt handed over to the next backend"


class RollupEvents(models.Model):
    """Counts per error code (errors) or per attempt outcome (failovers)."""

    backend = models.CharField(max_length=64, blank=True, default="")
    model = models.CharField(max_length=255, default="other")
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    status = models.PositiveIntegerField(default=0, help_text="HTTP status; 0 when there was none.")
    code = models.CharField(max_length=64, blank=True, default="", help_text="Error code or attempt outcome.")
    count = models.PositiveBigIntegerField(default=0)

    class Meta:
        abstract = True


class TrafficEventMinute(RollupEvents):
    bucket = models.DateTimeField()

    class Meta:
        ordering = ["-bucket", "backend", "model", "kind", "status", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["bucket", "backend", "model", "kind", "status", "code"], name="traffic_event_minute_unique"
            ),
        ]


class TrafficEventDay(RollupEvents):
    day = models.DateField()

    class Meta:
        ordering = ["-day", "backend", "model", "kind", "status", "code"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "backend", "model", "kind", "status", "code"], name="traffic_event_day_unique"
            ),
        ]


class CircuitState(models.TextChoices):
    CLOSED = "closed", "Closed"
    HALF_OPEN = "half_open", "Half-open (one trial request)"
    OPEN = "open", "Open"


class BackendLiveState(models.Model):
    """What one instance's gateway process knows about a backend right now, written at
    every flush. Readers take the worst state across instances heard from recently."""

    instance = models.CharField(max_length=64)
    backend = models.CharField(max_length=64)
    circuit = models.CharField(max_length=16, choices=CircuitState.choices, default=CircuitState.CLOSED)
    rate_limited_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["backend", "instance"]
        constraints = [models.UniqueConstraint(fields=["instance", "backend"], name="backend_live_state_unique")]

    def __str__(self) -> str:
        return f"{self.backend} @ {self.instance}: {self.circuit}"


class ProbeMinute(models.Model):
    """Health probes of one backend in one minute, from whichever process ran them (the Celery
    worker, start-up, the saved backend's test endpoint): the dashboard's 24-hour uptime and probe-history bar.
    Added to like the roll-ups, so two probes in one minute both count."""

    bucket = models.DateTimeField(help_text="Start of the minute (UTC).")
    backend = models.CharField(max_length=64)
    probes = models.PositiveIntegerField(default=0)
    healthy = models.PositiveIntegerField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    latency_sum = models.FloatField(default=0.0, help_text="Milliseconds, of the probes that had a latency.")

    class Meta:
        ordering = ["-bucket", "backend"]
        constraints = [models.UniqueConstraint(fields=["backend", "bucket"], name="probe_minute_unique")]

    def __str__(self) -> str:
        return f"{self.bucket:%Y-%m-%d %H:%M} {self.backend}: {self.healthy}/{self.probes}"
