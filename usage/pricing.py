"""What a request cost: model prices as an immutable book the hot path reads."""

from __future__ import annotations


class PriceBook:
    """Prices by model (and provider). ``cost`` returns None for a model with no price."""

    def cost(self, model: str, backend, usage) -> float | None:
        return None
