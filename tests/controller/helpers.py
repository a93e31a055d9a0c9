"""A plain LoadSource for the controller tests (fixed figures a test can change), and a controller
that never answers."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from eldric_cloud.controller.protocol import BackendStatus, MinuteFigures


@dataclass
class StaticSource:
    worker: str = "cld-1234abcd"
    state: str = "healthy"
    in_flight: int = 2
    connections: int = 5
    backend_list: list[BackendStatus] = field(
        default_factory=lambda: [
            BackendStatus(name="xai", kind="openai_compatible", state="healthy", models=2, latency_ms=12.5, priority=1),
            BackendStatus(name="groq", kind="openai_compatible", state="circuit_open", models=1, priority=2),
        ]
    )
    model_list: list[str] = field(default_factory=lambda: ["grok-3", "grok-2", "llama-3.1-8b"])
    minute: MinuteFigures = field(default_factory=lambda: MinuteFigures(requests=10, errors=1, p50_latency_ms=250.0))
    tier: str = "standard"

    def worker_id(self) -> str:
        return self.worker

    def uptime_seconds(self) -> int:
        return 42

    def status(self) -> str:
        return self.state

    def inflight(self) -> int:
        return self.in_flight

    def active_connections(self) -> int:
        return self.connections

    def backends(self) -> list[BackendStatus]:
        return self.backend_list

    def models(self) -> list[str]:
        return self.model_list

    def last_minute(self) -> MinuteFigures:
        return self.minute

    def license_tier(self) -> str:
        return self.tier


@contextlib.asynccontextmanager
async def black_hole():
    """A TCP server that accepts and never answers: the slowest possible controller."""
    held = []

    async def accept(reader, writer):
        held.append(writer)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in held:
            writer.close()
        server.close()
