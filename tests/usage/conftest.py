"""Synthetic finished requests, prices and a recorder for the usage tests."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from gateway.context import Attempt, Principal, RequestContext, Usage
from tests.api.conftest import admin_token, api  # noqa: F401 - fixtures, shared
from tests.e2e.conftest import postgres_url  # noqa: F401 - a fixture, shared

T0 = 1000.0


def finished(
    *,
    model: str = "gpt-test",
    backend: str = "alpha",
    usage: Usage | None = None,
    cost: float | None = None,
    status: int = 200,
    error_code: str = "",
    principal: Principal | None = None,
    at: float | None = None,
    dialect: str = "openai.chat",
    latency: float = 0.25,
) -> RequestContext:
    ctx = RequestContext(request_id="req_test", dialect=dialect, received=T0)
    ctx.received_at = time.time() if at is None else at
    ctx.model = model
    ctx.backend = backend
    ctx.usage = usage
    ctx.cost_usd = cost
    ctx.status = status
    ctx.error_code = error_code
    if principal is not None:
        ctx.principal = principal
    if backend:
        ctx.attempts.append(Attempt(backend, started=T0, ended=T0 + latency, outcome="ok", status=status))
    ctx.done = T0 + latency
    return ctx


def price(provider: str = "", model: str = "gpt-test", *, input="2", output="8", cached=None, reasoning=None):
    from usage.models import ModelPrice
    from usage.services import model_price_save

    return model_price_save(
        ModelPrice(
            provider=provider,
            model=model,
            input_per_million=Decimal(input),
            output_per_million=Decimal(output),
            cached_input_per_million=None if cached is None else Decimal(cached),
            reasoning_per_million=None if reasoning is None else Decimal(reasoning),
        )
    )


@pytest.fixture
def recorder():
    from usage.recorder import UsageRecorder

    made = UsageRecorder(instance="test", flush_seconds=60, stop_timeout=2)
    yield made
    made.stop()
