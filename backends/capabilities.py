"""What a discovered model is for: chat, embedding, rerank, image, audio, moderation, completion.

Each adapter's ``parse_models`` says it when the provider does (Cohere's ``endpoints``, Ollama's
``capabilities``, Together's ``type``; every Anthropic model is a chat model). Otherwise
``from_id`` reads the id the way OpenAI names its models (``text-embedding-3-small``,
``dall-e-3``, ``whisper-1``, ``omni-moderation-latest``, ...). A model neither says anything about
is ``UNKNOWN``: listed as a chat model, yet never refused anywhere, because a guess must not
stop a request the upstream might serve (a vLLM serving ``BAAI/bge-m3`` is an embedding model
no id rule recognises).

The gateway refuses before forwarding only what is known not to fit (``refusal``): a model
known to be non-text on chat, messages, responses or completions, and a model known not to
embed on ``/v1/embeddings``.
"""

from __future__ import annotations

import re

CHAT = "chat"
# Text completion only (a base model): Cohere's ``generate``, Together's ``language``/``code``.
COMPLETION = "completion"
EMBEDDING = "embedding"
RERANK = "rerank"
IMAGE = "image"
AUDIO = "audio"
MODERATION = "moderation"
# Nothing the provider or the id says: shown as chat, refused nowhere.
UNKNOWN = ""

KNOWN = frozenset({CHAT, COMPLETION, EMBEDDING, RERANK, IMAGE, AUDIO, MODERATION})
# What the text-generating ingresses (chat, messages, responses, completions) may forward to.
GENERATES_TEXT = frozenset({CHAT, COMPLETION, UNKNOWN})
EMBEDS = frozenset({EMBEDDING, UNKNOWN})

# The ingress endpoint (``gateway.proxy.Endpoint.name``) -> the capabilities it may forward to.
ACCEPTED_BY_ENDPOINT = {"chat": GENERATES_TEXT, "completions": GENERATES_TEXT, "embeddings": EMBEDS}

# Where a client should go instead, by capability.
ENDPOINT_FOR = {
    CHAT: "/v1/chat/completions",
    COMPLETION: "/v1/completions",
    EMBEDDING: "/v1/embeddings",
    RERANK: "a rerank endpoint (the gateway has none)",
    IMAGE: "an images endpoint (the gateway has none)",
    AUDIO: "an audio endpoint (the gateway has none)",
    MODERATION: "a moderations endpoint (the gateway has none)",
}
NOUN = {
    CHAT: "a chat model",
    COMPLETION: "a text completion model",
    EMBEDDING: "an embedding model",
    RERANK: "a rerank model",
    IMAGE: "an image model",
    AUDIO: "an audio model",
    MODERATION: "a moderation model",
}

# Checked in order on the lowercased id; the first match wins (``bge-reranker`` is a reranker).
ID_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"rerank"), RERANK),
    (re.compile(r"embed|^text-similarity-|^text-search-|(^|[/_-])(bge|gte|e5)-"), EMBEDDING),
    (re.compile(r"(^|/)(dall-e|gpt-image|chatgpt-image)|stable-diffusion|sdxl|(^|/)flux"), IMAGE),
    (re.compile(r"(^|/)(whisper|tts-)|-tts($|-)|-transcribe($|-)"), AUDIO),
    (re.compile(r"moderation"), MODERATION),
)


def from_id(model_id: str) -> str:
    """The capability an OpenAI-style id names, or ``UNKNOWN`` (which is listed as chat)."""
    lowered = model_id.lower()
    for pattern, capability in ID_RULES:
        if pattern.search(lowered):
            return capability
    return UNKNOWN


def listed(capability: str) -> list[str]:
    """``capabilities`` as /v1/models shows it: unknown is shown as chat, OpenAI's default."""
    return [capability or CHAT]


def shown(capability: str) -> str:
    """The management API's word: the capability, or ``unknown``."""
    return capability or "unknown"


def refusal(capability: str, endpoint: str) -> str | None:
    """Why ``endpoint`` must not be forwarded a model of ``capability``, or None when it may."""
    accepted = ACCEPTED_BY_ENDPOINT.get(endpoint)
    if accepted is None or capability in accepted:
        return None
    noun = NOUN.get(capability, f"a {capability} model")
    return f"{noun}; use {ENDPOINT_FOR.get(capability, 'another endpoint')}"
