"""Relaying a stream to the client as it arrives, after the failover window has closed.

Once bytes have gone out the backend cannot be switched: an upstream failure, a translator
that cannot read what the upstream sent, or an upstream that goes quiet for longer than
``ELDRIC_STREAM_IDLE_TIMEOUT`` ends the stream with an OpenAI-shaped error event and
``data: [DONE]``. A client that goes away cancels the request (see ``gateway.pipeline``),
and the upstream response is closed at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import httpx

from backends.providers.base import SSE_DONE, OpenAIError, ProviderError
from backends.redaction import redact
from gateway import context as outcomes
from gateway.context import Usage
from gateway.failures import transport_error
from gateway.usage import StreamTail, UsageStripper

if TYPE_CHECKING:
    from gateway.asgi_io import Responder
    from gateway.context import RequestContext
    from gateway.pipeline import Gateway
    from gateway.upstream import UpstreamResponse

logger = logging.getLogger(__name__)

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
# The idle deadline moves at most this often: rescheduling a timer on every chunk costs more
# than the precision is worth.
RESCHEDULE_EVERY = 1.0


def stream_error(message: str, code: str = "upstream_stream_error") -> OpenAIError:
    return OpenAIError(502, message, type="api_error", code=code)


async def relay_stream(
    gw: Gateway,
    ctx: RequestContext,
    out: Responder,
    *,
    route,
    provider,
    payload,
    upstream: UpstreamResponse,
    headers,
    strip_usage: bool,
) -> None:
    """Forward the stream as it arrives, counting its tokens on the way."""
    translator = provider.stream_translator(route, payload)
    relay = _Relay(gw, ctx, out, route, translator, strip_usage=strip_usage and translator is None)
    out.streaming = True
    try:
        await out.start(200, SSE_HEADERS + headers)
        async with relay.deadline:
            async for chunk in upstream.aiter_raw():
                await relay.forward(chunk)
        await relay.finish()
    except TimeoutError:
        await relay.fail(f"backend {route.name} sent nothing for {relay.idle:g} s", "upstream_timeout")
    except httpx.HTTPError as exc:
        await relay.fail(f"backend {route.name} failed mid-stream: {transport_error(route, exc).message}")
    except ProviderError as exc:
        await relay.fail(f"backend {route.name} sent a stream that cannot be read: {exc}", "upstream_invalid_response")
    finally:
        # Also when the client left or the stream failed: what was relayed was used. (An SDK
        # closes the connection as soon as it has read [DONE], often before the upstream's end.)
        relay.settle_usage()
        await upstream.aclose()


class _Relay:
    """One stream's relay state: its idle deadline, and what tracks the relayed bytes."""

    def __init__(self, gw: Gateway, ctx: RequestContext, out: Responder, route, translator, *, strip_usage: bool):
        self.gw, self.ctx, self.out, self.route, self.translator = gw, ctx, out, route, translator
        # What the client gets of a relayed stream, and where its usage is found.
        self.tracker = UsageStripper() if strip_usage else StreamTail()
        self.upstream_error = False
        self.loop = asyncio.get_running_loop()
        self.idle = gw.config.stream_idle_timeout
        self.deadline = asyncio.timeout(self.idle)
        self.moved = self.loop.time()
        self.max_line = gw.config.max_stream_line_bytes
        # Bytes since the last newline: what a translator or the stripper may be holding.
        self.open_line = 0

    async def forward(self, chunk: bytes) -> None:
        ctx, out = self.ctx, self.out
        if ctx.first_upstream_byte is None:
            ctx.first_upstream_byte = time.monotonic()
        newline = chunk.rfind(b"\n")
        self.open_line = len(chunk) - newline - 1 if newline >= 0 else self.open_line + len(chunk)
        if self.open_line > self.max_line:
            raise ProviderError(f"a line of the stream is longer than {self.max_line} bytes")
        now = self.loop.time()
        if now - self.moved > RESCHEDULE_EVERY and (b"\n\n" in chunk or b"\n\r\n" in chunk):
            # Only a complete event counts as progress: a byte a second is not.
            self.deadline.reschedule(now + self.idle)
            self.moved = now
        if self.translator is not None:
            for frame in self.translator.feed(chunk):
                await out.body(frame, more=True)
            return
        chunk = self.tracker.feed(chunk)
        if not chunk:
            return
        await out.body(chunk, more=True)
        # Groq and others report failures as an error event after a 200.
        self.upstream_error = self.upstream_error or b'"error":' in chunk

    async def finish(self) -> None:
        ctx, out = self.ctx, self.out
        if self.translator is not None:
            frames = self.translator.close()
            for frame in frames[:-1]:
                await out.body(frame, more=True)
            await out.body(frames[-1] if frames else SSE_DONE)
            return
        tracker = self.tracker
        if rest := tracker.flush():
            await out.body(rest, more=True)
        if tracker.ended_with_done():
            await out.body(b"")
        elif self.upstream_error:
            # The upstream already sent an OpenAI-shaped error event; only the terminator is missing.
            ctx.error_type, ctx.error_code = "api_error", "upstream_stream_error"
            await out.body(SSE_DONE)
        else:
            await self.fail(f"backend {self.route.name} ended the stream early")

    def settle_usage(self) -> None:
        if self.ctx.usage is None:
            if self.translator is not None:
                self.ctx.usage = Usage.from_openai(getattr(self.translator, "usage", None))
            else:
                self.ctx.usage = self.tracker.usage()

    async def fail(self, message: str, code: str = "upstream_stream_error") -> None:
        # An adapter's complaint may quote what the upstream sent, and an upstream may echo its key.
        message = redact(message, self.route.api_key)
        logger.warning("%s", message)
        attempt = self.ctx.attempts[-1]
        attempt.outcome = outcomes.STREAM_ERROR
        attempt.reason = message
        attempt.ended = time.monotonic()
        self.gw.breakers.record_failure(self.route.name, self.route.healthy_probes)
        await self.out.end_stream_with_error(stream_error(message, code))
