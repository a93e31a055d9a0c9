"""Reads for usage and prices."""

from __future__ import annotations

from usage.pricing import PriceBook


def price_book_build() -> PriceBook:
    return PriceBook()
