"""Pure routing: which backends may serve a model, in the order to try them."""

from __future__ import annotations

from dataclasses import dataclass

from backends.providers.base import OpenAIError
from backends.snapshot import BackendRoute, RoutingSnapshot
from gateway.breaker import BreakerBoard


@dataclass(frozen=True, slots=True)
class RoutePlan:
    candidates: tuple[BackendRoute, ...] = ()
    error: OpenAIError | None = None


def backend_state(route: BackendRoute, board: BreakerBoard) -> str:
    """One word for an operator: disabled, the probe's verdict, or the circuit's."""
    if not route.enabled:
        return "disabled"
    if route.probe_excluded:
        return route.health
    circuit = board.state(route.name, route.healthy_since)
    if circuit != "closed":
        return f"circuit_{circuit}"
    if not board.available(route.name, route.healthy_since):
        return "rate_limited"
    return route.health


def plan(snapshot: RoutingSnapshot, model: str, board: BreakerBoard) -> RoutePlan:
    """Backends listing ``model`` best-priority first, minus excluded ones.

    A model that no backend lists goes to the default backend unchanged. A listed model is
    never silently sent to the default backend: when all of its backends are excluded, the
    answer is 503 with each backend's state (seed, routing step 4).
    """
    listed = snapshot.model_routes.get(model)
    if listed is None:
        default = snapshot.default_route()
        if default is None:
            return RoutePlan(
                error=OpenAIError(
                    404,
                    f"The model `{model}` is not served by any backend and no default backend is configured.",
                    param="model",
                    code="model_not_found",
                )
            )
        listed = (default,)
    usable = tuple(r for r in listed if not r.probe_excluded and board.available(r.name, r.healthy_since))
    if usable:
        return RoutePlan(candidates=usable)
    states = ", ".join(f"{r.name}: {backend_state(r, board)}" for r in listed)
    return RoutePlan(
        error=OpenAIError(
            503,
            f"No healthy backend can serve `{model}` ({states}).",
            type="service_unavailable",
            code="no_healthy_backend",
        )
    )
