"""Provider adapters, one module per backend kind, imported lazily by kind."""

from __future__ import annotations

from functools import cache
from importlib import import_module

from backends.providers.base import Provider

PROVIDERS = {
    "openai_compatible": "backends.providers.openai_compatible.OpenAICompatibleProvider",
    "cohere": "backends.providers.cohere.CohereProvider",
    "ollama": "backends.providers.ollama.OllamaProvider",
    "anthropic": "backends.providers.anthropic.AnthropicProvider",
}


@cache
def provider_for(kind: str) -> Provider:
    """The (stateless, shared) adapter for a backend kind."""
    module_path, _, class_name = PROVIDERS[kind].rpartition(".")
    return getattr(import_module(module_path), class_name)()
