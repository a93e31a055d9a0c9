"""The price book: exact ids, globs, providers, cached and reasoning tokens; prices as data."""

from __future__ import annotations

import pytest

from backends.snapshot import BackendRoute
from gateway.context import Usage
from tests.usage.conftest import price
from usage.pricing import Price, PriceBook


def route(name="openai", kind="openai_compatible", url="https://api.openai.com/v1") -> BackendRoute:
    return BackendRoute(name=name, kind=kind, url=url, api_key="sk-test-key-0001")


def book(*prices: Price) -> PriceBook:
    return PriceBook(list(prices))


def test_cost_bills_uncached_input_cached_input_output_and_reasoning_at_their_rates():
    prices = book(Price.per_million("", "m", input=2, cached_input=0.5, output=8, reasoning=4))
    # 600 uncached + 400 cached input; 300 output of which 100 reasoning.
    cost = prices.cost("m", None, Usage(1000, 300, cached_tokens=400, reasoning_tokens=100))
    assert cost == pytest.approx((600 * 2 + 400 * 0.5 + 200 * 8 + 100 * 4) / 1e6)


def test_cached_input_is_billed_as_input_and_reasoning_as_output_unless_priced():
    prices = book(Price.per_million("", "m", input=2, output=8))
    assert prices.cost("m", None, Usage(1000, 300, cached_tokens=400, reasoning_tokens=100)) == pytest.approx(
        (1000 * 2 + 300 * 8) / 1e6
    )


def test_a_model_without_a_price_costs_none_not_zero():
    prices = book(Price.per_million("", "m", input=2, output=8))
    assert prices.cost("other", route(), Usage(10, 10)) is None
    assert PriceBook().cost("m", None, Usage(10, 10)) is None


def test_an_exact_id_wins_over_a_glob_and_the_most_specific_glob_wins():
    prices = book(
        Price.per_million("", "gpt-*", input=1, output=1),
        Price.per_million("", "gpt-5.4*", input=2, output=2),
        Price.per_million("", "gpt-5.4-mini", input=3, output=3),
    )
    usage = Usage(1_000_000, 0)
    assert prices.cost("gpt-5.4-mini", None, usage) == pytest.approx(3)
    assert prices.cost("gpt-5.4-2026", None, usage) == pytest.approx(2)
    assert prices.cost("gpt-4o", None, usage) == pytest.approx(1)
    # A glob's answer is remembered; asking again gives the same.
    assert prices.cost("gpt-5.4-2026", None, usage) == pytest.approx(2)


@pytest.mark.parametrize(
    ("provider", "backend", "matches"),
    [
        ("openai", route(), True),  # a label of the host
        ("api.openai.com", route(), True),  # the host
        ("openai.com", route(), True),  # a domain of it
        ("anthropic", route("claude", "anthropic", "https://api.anthropic.com/v1"), True),  # the kind
        ("mybox", route("mybox", url="http://10.0.0.5:8000/v1"), True),  # the name
        ("x.ai", route("grok", url="https://api.x.ai/v1"), True),
        ("anthropic", route(), False),
        ("penai", route(), False),
    ],
)
def test_a_provider_names_backends_by_name_kind_or_url_host(provider, backend, matches):
    prices = book(Price.per_million(provider, "m", input=1, output=1))
    assert (prices.cost("m", backend, Usage(1_000_000, 0)) is not None) is matches


def test_a_provider_price_wins_over_a_price_for_any_backend():
    prices = book(
        Price.per_million("", "llama", input=1, output=1),
        Price.per_million("groq", "llama", input=5, output=5),
    )
    groq = route("groq", url="https://api.groq.com/openai/v1")
    assert prices.cost("llama", groq, Usage(1_000_000, 0)) == pytest.approx(5)
    assert prices.cost("llama", route("local", url="http://127.0.0.1:8000/v1"), Usage(1_000_000, 0)) == 1
    assert prices.cost("llama", None, Usage(1_000_000, 0)) == 1


def test_cost_never_raises_on_odd_input():
    prices = book(Price.per_million("", "m*", input=1, output=1))
    assert prices.cost("m", object(), Usage(5, 5)) is not None  # a backend without attributes
    assert prices.cost("m", None, object()) is None  # not a usage at all: unpriced, logged
    assert prices.cost("", None, Usage(5, 5)) is None


@pytest.mark.django_db
def test_prices_are_rows_and_writing_one_moves_the_access_version():
    from orgs.selectors import access_version_get
    from usage.selectors import price_book_build

    before = access_version_get()
    price("", "gpt-test", input="2", output="8")
    assert access_version_get() == before + 1
    assert price_book_build().cost("gpt-test", None, Usage(1_000_000, 1_000_000)) == pytest.approx(10)


@pytest.mark.django_db
def test_the_seeded_prices_name_their_source_and_date():
    from usage.models import ModelPrice

    seeded = {(p.provider, p.model): p for p in ModelPrice.objects.all()}
    for key in [
        ("openai", "gpt-5.4"),
        ("openai", "gpt-5.4-mini"),
        ("anthropic", "claude-sonnet-4-2025*"),
        ("x.ai", "grok-4.3"),
        ("groq", "llama-3.3-70b-versatile"),
        ("together", "openai/gpt-oss-120b"),
        ("fireworks", "accounts/fireworks/models/kimi-k2p5"),
        ("mistral", "mistral-medium-3.5"),
        ("cohere", "command-r-08-2024"),
    ]:
        assert seeded[key].source_url.startswith("https://") and seeded[key].as_of is not None
    # DeepSeek prices by time of day, which one price cannot express: left unpriced.
    assert not any(p == "deepseek" for p, _ in seeded)


@pytest.mark.django_db
def test_a_seeded_price_applies_to_the_presets_backend():
    from usage.selectors import price_book_build

    book = price_book_build()
    xai = route("xai", url="https://api.x.ai/v1")
    # 1M input, 1M output at grok-4.3's list price: 1.25 + 2.50.
    assert book.cost("grok-4.3", xai, Usage(1_000_000, 1_000_000)) == pytest.approx(3.75)
    groq = route("groq", url="https://api.groq.com/openai/v1")
    assert book.cost("llama-3.3-70b-versatile", groq, Usage(1_000_000, 1_000_000)) == pytest.approx(0.59 + 0.79)
    # A Fireworks family glob prices each of its models, with the cache rate for cached input.
    fireworks = route("fireworks", url="https://api.fireworks.ai/inference/v1")
    usage = Usage(1_000_000, 0, cached_tokens=1_000_000)
    assert book.cost("accounts/fireworks/models/deepseek-v3p2", fireworks, usage) == pytest.approx(0.28)
    deepseek = route("deepseek", url="https://api.deepseek.com/v1")
    assert book.cost("deepseek-chat", deepseek, Usage(1, 1)) is None


@pytest.mark.django_db(transaction=True)
def test_a_price_edited_in_the_database_reaches_a_polling_gateway():
    from gateway.snapshot import SnapshotSource

    source = SnapshotSource()
    source.refresh()
    assert source.prices.cost("brand-new", None, Usage(1_000_000, 0)) is None
    price("", "brand-new", input="7", output="7")
    assert source.refresh()
    assert source.prices.cost("brand-new", None, Usage(1_000_000, 0)) == pytest.approx(7)
