"""List prices for the presets' current models, each with where and when it was read.

Only prices that could be confirmed are seeded; a model left out here is *unpriced* (flagged
in the usage views and API, never billed as $0) until an operator adds its price in the admin.
Groq, Together, Fireworks, Mistral and Cohere are seeded by ``0003_usage_seed_more_prices``.
"""

import datetime

from django.db import migrations

from usage.price_seeds import seed_prices, unseed_prices

OPENAI_SOURCE = "https://tokenmix.ai/blog/openai-api-cost-2026-gpt-5-5-5-4-nano-batch"
OPENAI_AS_OF = datetime.date(2026, 6, 4)
ANTHROPIC_SOURCE = "https://docs.anthropic.com/en/docs/about-claude/pricing"
ANTHROPIC_AS_OF = datetime.date(2026, 12, 1)
XAI_SOURCE = "https://docs.x.ai/developers/pricing"
XAI_AS_OF = datetime.date(2026, 12, 1)

# (provider, model id or glob, input, cached input, output, source, as of): USD per 1M tokens.
PRICES = [
    # OpenAI's pricing page (developers.openai.com/api/docs/pricing), standard tier, short
    # context, as quoted and checked against it by the source on its date.
    ("openai", "gpt-5.5", "5.00", "0.50", "30.00", OPENAI_SOURCE, OPENAI_AS_OF),
    ("openai", "gpt-5.4", "2.50", "0.25", "15.00", OPENAI_SOURCE, OPENAI_AS_OF),
    ("openai", "gpt-5.4-mini", "0.75", "0.075", "4.50", OPENAI_SOURCE, OPENAI_AS_OF),
    ("openai", "gpt-5.4-nano", "0.20", "0.02", "1.25", OPENAI_SOURCE, OPENAI_AS_OF),
    # Anthropic's own pricing page: base input, cache hits, output. Cache *writes* (1.25x or
    # 2x input) are not separated in the usage the gateway sees; they are billed as input.
    ("anthropic", "claude-opus-4-1*", "15.00", "1.50", "75.00", ANTHROPIC_SOURCE, ANTHROPIC_AS_OF),
    ("anthropic", "claude-opus-4-0", "15.00", "1.50", "75.00", ANTHROPIC_SOURCE, ANTHROPIC_AS_OF),
    ("anthropic", "claude-opus-4-2025*", "15.00", "1.50", "75.00", ANTHROPIC_SOURCE, ANTHROPIC_AS_OF),
    ("anthropic", "claude-sonnet-4-0", "3.00", "0.30", "15.00", ANTHROPIC_SOURCE, ANTHROPIC_AS_OF),
    ("anthropic", "claude-sonnet-4-2025*", "3.00", "0.30", "15.00", ANTHROPIC_SOURCE, ANTHROPIC_AS_OF),
    ("anthropic", "claude-3-7-sonnet*", "3.00", "0.30", "15.00", ANTHROPIC_SOURCE, ANTHROPIC_AS_OF),
    ("anthropic", "claude-3-5-haiku*", "0.80", "0.08", "4.00", ANTHROPIC_SOURCE, ANTHROPIC_AS_OF),
    ("anthropic", "claude-3-haiku*", "0.25", "0.03", "1.25", ANTHROPIC_SOURCE, ANTHROPIC_AS_OF),
    # xAI's own pricing page (Chat API, per 1M tokens). "x.ai" matches a backend on api.x.ai.
    ("x.ai", "grok-4.3", "1.25", "0.20", "2.50", XAI_SOURCE, XAI_AS_OF),
    ("x.ai", "grok-4.20-multi-agent-0309", "1.25", "0.20", "2.50", XAI_SOURCE, XAI_AS_OF),
    ("x.ai", "grok-4.20-0309-reasoning", "1.25", "0.20", "2.50", XAI_SOURCE, XAI_AS_OF),
    ("x.ai", "grok-4.20-0309-non-reasoning", "1.25", "0.20", "2.50", XAI_SOURCE, XAI_AS_OF),
    ("x.ai", "grok-4-1-fast-reasoning", "0.20", "0.05", "0.50", XAI_SOURCE, XAI_AS_OF),
    ("x.ai", "grok-4-1-fast-non-reasoning", "0.20", "0.05", "0.50", XAI_SOURCE, XAI_AS_OF),
    # Local Ollama: no per-token charge. Edit it for a paid remote Ollama.
    ("ollama", "*", "0", None, "0", "", None),
]


def seed(apps, schema_editor):
    seed_prices(apps, PRICES)


def unseed(apps, schema_editor):
    unseed_prices(apps, PRICES)


class Migration(migrations.Migration):
    dependencies = [("usage", "0001_usage_initial"), ("orgs", "0002_default_organisation")]

    operations = [migrations.RunPython(seed, unseed)]
