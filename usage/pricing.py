"""What a request cost: model prices as an immutable book the hot path reads.

``PriceBook.cost`` runs at the end of every request, on the event loop, so everything it can
work out in advance is worked out when the book is built (``usage.selectors.price_book_build``,
off the request path): per-token rates, exact ids in dicts, globs in match order. At request
time it does dict lookups; globs are tried only for an id no exact entry names, and what they
answer is remembered per (backend, model) so a model is matched against globs once.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

# Client-chosen model names are unbounded: the memo of glob answers is cleared past this.
MEMO_LIMIT = 4096
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token (not per million), precomputed."""

    provider: str
    model: str
    input: float
    cached_input: float
    output: float
    reasoning: float

    @classmethod
    def per_million(
        cls,
        provider: str,
        model: str,
        *,
        input: float,
        output: float,
        cached_input: float | None = None,
        reasoning: float | None = None,
    ) -> Price:
        """Cached input is billed as input, and reasoning as output, unless priced."""
        scale = 1_000_000.0
        return cls(
            provider=provider.strip().lower(),
            model=model.strip(),
            input=float(input) / scale,
            cached_input=float(input if cached_input is None else cached_input) / scale,
            output=float(output) / scale,
            reasoning=float(output if reasoning is None else reasoning) / scale,
        )

    def cost(self, usage) -> float:
        prompt = max(0, int(usage.prompt_tokens))
        cached = min(prompt, max(0, int(usage.cached_tokens)))
        completion = max(0, int(usage.completion_tokens))
        # OpenAI counts reasoning tokens inside completion_tokens.
        reasoning = min(completion, max(0, int(usage.reasoning_tokens)))
        return (
            (prompt - cached) * self.input
            + cached * self.cached_input
            + (completion - reasoning) * self.output
            + reasoning * self.reasoning
        )


def provider_matches(provider: str, name: str, kind: str, url: str) -> bool:
    """Whether a price's provider names this backend (see ``usage.models.ModelPrice``)."""
    if not provider:
        return True
    if provider in (name.lower(), kind.lower()):
        return True
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if not host:
        return False
    return host == provider or host.endswith("." + provider) or provider in host.split(".")


class PriceBook:
    """Prices by model (and provider). ``cost`` returns None for a model with no price and
    never raises: budgets are charged from it."""

    def __init__(self, prices: list[Price] | tuple[Price, ...] = ()) -> None:
        self.prices = tuple(prices)
        self.providers = tuple(sorted({p.provider for p in self.prices if p.provider}))
        # (provider, model id) -> price; provider "" is "any backend".
        self._exact: dict[tuple[str, str], Price] = {}
        globs = []
        for price in self.prices:
            if _GLOB_CHARS.search(price.model):
                globs.append(price)
            else:
                self._exact[(price.provider, price.model)] = price
        # A provider's own glob before an "any" glob; then the most specific pattern (the
        # longest literal part) first.
        globs.sort(key=lambda p: (p.provider == "", -len(_GLOB_CHARS.sub("", p.model)), p.model))
        self._globs = tuple((p, re.compile(fnmatch.translate(p.model))) for p in globs)
        # Backend -> the providers naming it, in book order; and (providers, model) -> glob answer.
        self._route_providers: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self._glob_memo: dict[tuple[tuple[str, ...], str], Price | None] = {}

    def __len__(self) -> int:
        return len(self.prices)

    def cost(self, model: str, backend, usage) -> float | None:
        try:
            price = self.price_for(model, backend)
            return None if price is None else price.cost(usage)
        except Exception:
            # Accounting must never fail a request; a bug here shows as "unpriced".
            logger.exception("pricing: could not price a request for model %.80r", model)
            return None

    def price_for(self, model: str, backend) -> Price | None:
        if not self.prices or not model:
            return None
        providers = self._providers_of(backend)
        exact = self._exact
        for provider in providers:
            price = exact.get((provider, model))
            if price is not None:
                return price
        price = exact.get(("", model))
        if price is not None or not self._globs:
            return price
        memo_key = (providers, model)
        try:
            return self._glob_memo[memo_key]
        except KeyError:
            pass
        allowed = {"", *providers}
        found = next((p for p, pattern in self._globs if p.provider in allowed and pattern.match(model)), None)
        if len(self._glob_memo) >= MEMO_LIMIT:
            self._glob_memo.clear()
        self._glob_memo[memo_key] = found
        return found

    def _providers_of(self, backend) -> tuple[str, ...]:
        if backend is None or not self.providers:
            return ()
        identity = (getattr(backend, "name", ""), getattr(backend, "kind", ""), getattr(backend, "url", ""))
        known = self._route_providers.get(identity)
        if known is None:
            known = tuple(p for p in self.providers if provider_matches(p, *identity))
            if len(self._route_providers) >= MEMO_LIMIT:
                self._route_providers.clear()
            self._route_providers[identity] = known
        return known
