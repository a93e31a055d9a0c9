"""Static backend definitions, free of Django so start-up parsing can build them before setup."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BackendSpec:
    """A backend as written in ``--backends`` or the config file."""

    name: str
    url: str
    kind: str = "openai_compatible"
    api_key: str = field(default="", repr=False)
    priority: int = 100
    enabled: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    # Serves /v1/responses itself; None: the provider's preset decides.
    responses_api: bool | None = None
