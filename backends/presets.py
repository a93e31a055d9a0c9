"""Known providers: default URL, key variable and backend kind, so ``--backends "xai::"`` works."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    url: str
    kind: str = "openai_compatible"
    # Serves OpenAI's Responses API (``/v1/responses``) itself.
    responses_api: bool = False


PRESETS: dict[str, Preset] = {
    "xai": Preset("https://api.x.ai/v1", responses_api=True),
    "openai": Preset("https://api.openai.com/v1", responses_api=True),
    "anthropic": Preset("https://api.anthropic.com/v1", "anthropic"),
    "deepseek": Preset("https://api.deepseek.com/v1"),
    "groq": Preset("https://api.groq.com/openai/v1"),
    "together": Preset("https://api.together.xyz/v1"),
    "fireworks": Preset("https://api.fireworks.ai/inference/v1"),
    "mistral": Preset("https://api.mistral.ai/v1"),
    "cohere": Preset("https://api.cohere.ai/v1", "cohere"),
    "ollama": Preset("http://localhost:11434", "ollama"),
}


def key_env_var(name: str) -> str:
    """``XAI_API_KEY`` for ``xai``; dashes become underscores (``OLLAMA_REMOTE_API_KEY``)."""
    return f"{name.upper().replace('-', '_')}_API_KEY"


def preset_for(name: str) -> Preset | None:
    return PRESETS.get(name.lower())


def kind_for_name(name: str) -> str:
    """The backend kind implied by a provider name (``ollama-remote`` is an Ollama)."""
    lowered = name.lower()
    if lowered.startswith("ollama"):
        return "ollama"
    preset = PRESETS.get(lowered)
    return preset.kind if preset else "openai_compatible"


def responses_api_default(name: str, url: str) -> bool:
    """Whether a backend serves the Responses API when its config does not say: by its
    provider (the URL's host, else its name), as the OpenAI-compatible adapter tells them apart."""
    from backends.providers.openai_compatible import flavour_for

    preset = PRESETS.get(flavour_for(name, url))
    return preset is not None and preset.responses_api
