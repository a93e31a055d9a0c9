"""A finished request as the row a usage record is written from (no ORM queries)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from orgs.models import DEFAULT_ORGANISATION
from usage.models import NANOS_PER_USD

# Requests that reach no backend and bill nothing: health checks, the catalogue, and the
# usage read itself (which would otherwise count itself).
NOT_RECORDED = frozenset({"health", "openai.models", "eldric.usage"})


@dataclass(frozen=True, slots=True)
class RecordRow:
    time: datetime
    request_id: str
    key_id: int | None
    organisation: str
    model: str
    backend: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_nanos: int | None
    unpriced: bool
    latency_ms: int | None
    status: int
    error_code: str
    instance: str
    is_error: bool

    @property
    def day(self):
        return self.time.date()


def cost_nanos(cost_usd: float | None) -> int | None:
    return None if cost_usd is None else round(cost_usd * NANOS_PER_USD)


def row_from_context(ctx, instance: str) -> RecordRow:
    """What a usage record keeps of a finished ``RequestContext``."""
    usage = ctx.usage
    prompt = usage.prompt_tokens if usage else 0
    completion = usage.completion_tokens if usage else 0
    used_tokens = usage is not None and (prompt > 0 or completion > 0)
    priced = ctx.cost_usd is not None
    principal = ctx.principal
    key_id = int(principal.key_id) if str(principal.key_id).isdigit() else None
    latency = ctx.latency
    status = int(ctx.status or 0)
    error_code = ctx.error_code or (ctx.error_type if status >= 400 or ctx.error_type else "")
    return RecordRow(
        time=datetime.fromtimestamp(ctx.received_at, tz=UTC),
        request_id=str(ctx.request_id)[:128],
        key_id=key_id,
        organisation=(principal.organisation or DEFAULT_ORGANISATION)[:64],
        model=str(ctx.model or "")[:255],
        backend=str(ctx.backend or "")[:64],
        input_tokens=prompt,
        cached_tokens=usage.cached_tokens if usage else 0,
        output_tokens=completion,
        reasoning_tokens=usage.reasoning_tokens if usage else 0,
        # Nothing used is nothing owed; tokens used without a price stay unknown, never $0.
        cost_nanos=cost_nanos(ctx.cost_usd) if priced else (None if used_tokens else 0),
        unpriced=used_tokens and not priced,
        latency_ms=None if latency is None else max(0, min(int(latency * 1000), 2**31 - 1)),
        status=status,
        error_code=str(error_code)[:64],
        instance=instance[:64],
        is_error=bool(ctx.is_error),
    )
