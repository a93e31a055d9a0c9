"""List prices for the other presets, each with where and when it was read.

Each row names the provider's own page. Where that page could only be read through a dated
quote of it, the quote is the source and its date is the "as of". Models left out are
*unpriced* (flagged in the usage views and API, never billed as $0):

- **DeepSeek**: since October 2026 its own page prices by time of day (peak and off-peak
  rates), which one price per model cannot express. Billing it at either rate would be
  wrong half the day, so it stays unpriced until the price table can hold time-of-day rates.
- Models whose current price two sources did not agree on (for example Together's Llama 3.3
  70B Turbo) are left for the operator.
"""

import datetime

from django.db import migrations

from usage.price_seeds import seed_prices, unseed_prices

FIREWORKS_SOURCE = "https://docs.fireworks.ai/serverless/pricing"
FIREWORKS_AS_OF = datetime.date(2026, 12, 1)
FIREWORKS = "accounts/fireworks/models/"
# console.groq.com/docs/models, as checked against it by the quoting issue on its date.
GROQ_OSS_SOURCE = "https://github.com/braintrustdata/braintrust-proxy/issues/566"
GROQ_OSS_AS_OF = datetime.date(2026, 5, 19)
# groq.com/pricing, as quoted (two quotes agree) on its date.
GROQ_LLAMA_SOURCE = (
    "https://tessl.io/registry/skills/github/jeremylongshore/claude-code-plugins-plus-skills/groq-cost-tuning"
)
GROQ_LLAMA_AS_OF = datetime.date(2026, 4, 30)
# docs.together.ai/docs/serverless-models, as checked against it by the same issue.
TOGETHER_SOURCE = GROQ_OSS_SOURCE
TOGETHER_AS_OF = GROQ_OSS_AS_OF
# cohere.com/pricing (Generative models), as captured by the quoting page on its date.
COHERE_SOURCE = "https://docs.flexprice.io/cookbooks/pricing-teardowns/cohere-pricing"
COHERE_AS_OF = datetime.date(2026, 11, 11)
# Mistral's launch announcement of Medium 3.5 (29 April 2026), as quoted.
MISTRAL_SOURCE = "https://apidog.com/fr/blog/mistral-medium-3-5-api/"
MISTRAL_AS_OF = datetime.date(2026, 4, 29)

# (provider, model id or glob, input, cached input, output, source, as of): USD per 1M tokens.
PRICES = [
    # Fireworks' own serverless pricing page, Standard tier: input / cached input / output.
    ("fireworks", FIREWORKS + "kimi-k2p6", "0.95", "0.16", "4.00", FIREWORKS_SOURCE, FIREWORKS_AS_OF),
    ("fireworks", FIREWORKS + "kimi-k2p5", "0.60", "0.10", "3.00", FIREWORKS_SOURCE, FIREWORKS_AS_OF),
    ("fireworks", FIREWORKS + "deepseek-v3p*", "0.56", "0.28", "1.68", FIREWORKS_SOURCE, FIREWORKS_AS_OF),
    ("fireworks", FIREWORKS + "glm-5", "1.00", "0.20", "3.20", FIREWORKS_SOURCE, FIREWORKS_AS_OF),
    ("fireworks", FIREWORKS + "glm-4p7", "0.60", "0.30", "2.20", FIREWORKS_SOURCE, FIREWORKS_AS_OF),
    ("fireworks", FIREWORKS + "gpt-oss-120b", "0.15", "0.015", "0.60", FIREWORKS_SOURCE, FIREWORKS_AS_OF),
    ("fireworks", FIREWORKS + "gpt-oss-20b", "0.07", "0.035", "0.30", FIREWORKS_SOURCE, FIREWORKS_AS_OF),
    # Groq publishes no cache rate for these: cached input is billed as input.
    ("groq", "openai/gpt-oss-120b", "0.15", None, "0.60", GROQ_OSS_SOURCE, GROQ_OSS_AS_OF),
    ("groq", "llama-3.3-70b-versatile", "0.59", None, "0.79", GROQ_LLAMA_SOURCE, GROQ_LLAMA_AS_OF),
    ("groq", "llama-3.1-8b-instant", "0.05", None, "0.08", GROQ_LLAMA_SOURCE, GROQ_LLAMA_AS_OF),
    ("together", "openai/gpt-oss-120b", "0.15", None, "0.60", TOGETHER_SOURCE, TOGETHER_AS_OF),
    ("cohere", "command-r-08-2024", "0.15", None, "0.60", COHERE_SOURCE, COHERE_AS_OF),
    ("cohere", "command-r7b-12-2024", "0.0375", None, "0.15", COHERE_SOURCE, COHERE_AS_OF),
    ("mistral", "mistral-medium-3.5", "1.50", None, "7.50", MISTRAL_SOURCE, MISTRAL_AS_OF),
]


def seed(apps, schema_editor):
    seed_prices(apps, PRICES)


def unseed(apps, schema_editor):
    unseed_prices(apps, PRICES)


class Migration(migrations.Migration):
    dependencies = [("usage", "0002_usage_seed_prices")]

    operations = [migrations.RunPython(seed, unseed)]
