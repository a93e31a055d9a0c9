"""Relaying a stream to the client as it arrives, after the failover window has closed.

Once bytes have gone out the backend cannot be switched: an upstream failure ends the stream
with an OpenAI-shaped error event and ``data: [DONE]``. A client that goes away cancels the
relay, and the upstream request is closed at once.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from backends.providers.base import SSE_DONE, OpenAIError
from gateway.failures import board, transport_error

logger = logging.getLogger(__name__)

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def relay_stream(receive, send, *, route, provider, payload, upstream: httpx.Response, headers) -> None:
    """Forward the stream as it arrives; close upstream at once if the client goes away."""
    task = asyncio.current_task()
    disconnected = asyncio.Event()

    async def watch_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
                task.cancel()
                return

    watcher = asyncio.create_task(watch_disconnect())
    translator = provider.stream_translator(route, payload)
    tail = b""
    upstream_error = False
    try:
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
        try:
            async for chunk in upstream.aiter_raw():
                if translator is None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    tail = (tail + chunk)[-64:]
                    # Groq and others report failures as an error event after a 200.
                    upstream_error = upstream_error or b'"error":' in chunk
                else:
                    for frame in translator.feed(chunk):
                        await send({"type": "http.response.body", "body": frame, "more_body": True})
        except httpx.HTTPError as exc:
            error = transport_error(route, exc)
            board().record_failure(route.name)
            logger.warning("backend %s failed mid-stream: %s", route.name, error.message)
            await _end_stream_with_error(
                send,
                OpenAIError(
                    502,
                    f"backend {route.name} failed mid-stream: {error.message}",
                    type="api_error",
                    code="upstream_stream_error",
                ),
            )
            return
        if translator is not None:
            for frame in translator.close():
                await send({"type": "http.response.body", "body": frame, "more_body": True})
        elif upstream_error and not tail.rstrip().endswith(b"[DONE]"):
            # The upstream already sent an OpenAI-shaped error event; only the terminator is missing.
            await send({"type": "http.response.body", "body": SSE_DONE, "more_body": False})
            return
        elif not tail.rstrip().endswith(b"[DONE]"):
            logger.warning("backend %s ended the stream without [DONE]", route.name)
            await _end_stream_with_error(
                send,
                OpenAIError(
                    502, f"backend {route.name} ended the stream early", type="api_error", code="upstream_stream_error"
                ),
            )
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except asyncio.CancelledError:
        if not disconnected.is_set():
            raise
        # The client went away: this task was cancelled on purpose, so finish quietly.
        task.uncancel()
        logger.info("client disconnected from a %s stream; upstream closed", route.name)
    finally:
        watcher.cancel()
        await upstream.aclose()


async def _end_stream_with_error(send, error: OpenAIError) -> None:
    await send({"type": "http.response.body", "body": error.sse() + SSE_DONE, "more_body": False})
