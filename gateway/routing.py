"""Pure routing: which backends may serve a model, in the order to try them."""

from __future__ import annotations

from dataclasses import dataclass

from backends import capabilities
from backends.providers.base import OpenAIError
from backends.snapshot import BackendRoute, RoutingSnapshot
from gateway.breaker import BreakerBoard

# The probe's verdict that a trial request may overturn; ``auth_failed`` needs the operator.
PROBE_DOWN = "unhealthy"


@dataclass(frozen=True, slots=True)
class RoutePlan:
    candidates: tuple[BackendRoute, ...] = ()
    error: OpenAIError | None = None
    # Whether ``model`` is one the catalogue lists (safe to count under its own name).
    model_known: bool = False
    # The candidate is a backend a probe called down: one trial request at a time.
    trial: bool = False


def probe_excluded(route: BackendRoute, board: BreakerBoard) -> bool:
    return route.probe_excluded and not board.recovered(route.name, route)


def backend_state(route: BackendRoute, board: BreakerBoard) -> str:
    """One word for an operator: disabled, the probe's verdict, or the circuit's."""
    if not route.enabled:
        return "disabled"
    if probe_excluded(route, board):
        return route.health
    circuit = board.state(route.name, route.healthy_probes)
    if circuit != "closed":
        return f"circuit_{circuit}"
    if board.blocked(route.name):
        return "rate_limited"
    return "healthy" if board.recovered(route.name, route) else route.health


def plan(snapshot: RoutingSnapshot, model: str, board: BreakerBoard, *, endpoint: str | None = None) -> RoutePlan:
    """Backends listing ``model`` best-priority first, minus excluded ones.

    A model that no backend lists goes to the default backend unchanged. A listed model is
    never silently sent to the default backend: when all of its backends are excluded, the
    answer is 503 with each backend's state (seed, routing step 4). Nor is a model whose only
    backends are disabled.

    With ``endpoint`` (``chat``, ``completions`` or ``embeddings``), backends that list the model
    as something that endpoint cannot use (an embedding model for chat, a chat model for
    embeddings) are left out; when no backend is left, the answer is 400 naming the model's
    capability. A backend that does not say what the model is for is never left out.
    """
    listed = snapshot.model_routes.get(model)
    known = listed is not None
    if listed is not None and endpoint is not None:
        listed, refused = _fitting(listed, snapshot.model_capabilities.get(model, ()), endpoint)
        if refused is not None:
            return RoutePlan(
                error=OpenAIError(400, f"The model `{model}` is {refused}.", param="model", code="model_not_supported"),
                model_known=True,
            )
    if listed is None:
        disabled = snapshot.disabled_models.get(model)
        if disabled:
            return RoutePlan(
                error=OpenAIError(
                    503,
                    f"The model `{model}` is served only by disabled backends ({', '.join(disabled)}).",
                    type="service_unavailable",
                    code="backend_disabled",
                )
            )
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
    usable = tuple(r for r in listed if not probe_excluded(r, board) and board.available(r.name, r.healthy_probes))
    if usable:
        return RoutePlan(candidates=usable, model_known=known)
    # Every backend is out. If a probe verdict is all that keeps the best one out, let one
    # request find out whether it is back: probes of a failing backend are seconds apart at
    # best, and a backend that returns should not wait for the next one.
    for route in listed:
        if route.health == PROBE_DOWN and board.available(route.name, route.healthy_probes):
            return RoutePlan(candidates=(route,), model_known=known, trial=True)
    states = ", ".join(f"{r.name}: {backend_state(r, board)}" for r in listed)
    return RoutePlan(
        error=OpenAIError(
            503,
            f"No healthy backend can serve `{model}` ({states}).",
            type="service_unavailable",
            code="no_healthy_backend",
        ),
        model_known=known,
    )


def _fitting(
    listed: tuple[BackendRoute, ...], said: tuple[str, ...], endpoint: str
) -> tuple[tuple[BackendRoute, ...], str | None]:
    """The backends whose word on the model suits ``endpoint``, or the refusal when none does."""
    accepted = capabilities.ACCEPTED_BY_ENDPOINT.get(endpoint)
    if accepted is None or len(said) != len(listed) or all(c in accepted for c in said):
        return listed, None
    fitting = tuple(route for route, capability in zip(listed, said, strict=True) if capability in accepted)
    if fitting:
        return fitting, None
    return listed, capabilities.refusal(said[0], endpoint)
