"""Seeding list prices from data migrations: one helper, so each seed migration is its table.

A row is ``(provider, model id or glob, input, cached input, output, source, as of)``, in USD
per 1M tokens, with ``cached input`` None where the provider publishes no cache rate. A row an
operator already has (same provider and model) is left as the operator set it.
"""

from decimal import Decimal


def seed_prices(apps, rows) -> None:
    ModelPrice = apps.get_model("usage", "ModelPrice")
    AccessVersion = apps.get_model("orgs", "AccessVersion")
    for provider, model, input_price, cached, output, source, as_of in rows:
        ModelPrice.objects.get_or_create(
            provider=provider,
            model=model,
            defaults={
                "input_per_million": Decimal(input_price),
                "cached_input_per_million": None if cached is None else Decimal(cached),
                "output_per_million": Decimal(output),
                "source_url": source,
                "as_of": as_of,
            },
        )
    # Running gateways reload prices when the access version moves.
    AccessVersion.objects.get_or_create(pk=1)
    version = AccessVersion.objects.get(pk=1)
    version.version += 1
    version.save(update_fields=["version"])


def unseed_prices(apps, rows) -> None:
    ModelPrice = apps.get_model("usage", "ModelPrice")
    for provider, model, *_ in rows:
        ModelPrice.objects.filter(provider=provider, model=model).delete()
