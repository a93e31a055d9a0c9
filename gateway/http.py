"""The gateway's upstream HTTP clients."""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING

import httpx

from gateway.config import GatewayConfig
from gateway.upstream import UpstreamResponse, kept

if TYPE_CHECKING:
    from gateway.upstream_aiohttp import AiohttpUpstream

USER_AGENT = {"user-agent": "eldric-cloudd/0.1"}


class _NoCookies(httpx.Cookies):
    """A jar that never stores: upstream ``Set-Cookie`` is not kept or replayed."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _GatewayClient(httpx.AsyncClient):
    """An ``AsyncClient`` without a cookie jar.

    One client serves every caller, so a stored cookie would be replayed to the upstream on
    behalf of other clients. Skipping httpx's per-response cookie extraction (urllib/email
    compatibility objects built for every answer) also saves about 5-8% of the gateway's CPU
    per request (bench/RESULTS.md).
    """

    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, value) -> None:
        pass


_NO_COOKIES = _NoCookies()


class UpstreamClients:
    """The upstream transport of each event loop (clients must not cross loops): aiohttp
    called directly (``gateway/upstream_aiohttp.py``, the default), or httpx's own
    (``ELDRIC_HTTP_TRANSPORT=httpx``), with the parsed form of each URL and header set kept.

    On httpx, ``_httpx_request`` builds the upstream request without ``AsyncClient.build_request``,
    which merges the client's headers into a fresh ``Headers`` on every call (about 8% of a
    request's CPU). An adapter sends the same headers to a backend every time, so they are
    merged once and kept; parsing a URL costs about 4% of a request, so URLs are kept too.
    """

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient | AiohttpUpstream] = (
            weakref.WeakKeyDictionary()
        )
        self._urls: dict[str, httpx.URL] = {}
        self._headers: dict[tuple, httpx.Headers] = {}
        self._timeout = _timeout(config).as_dict()
        # A stream's body is bounded by its relay's idle deadline (gateway/streaming.py), and the
        # wait for its headers by the proxy: no per-read timer.
        self._stream_timeout = {**self._timeout, "read": None}
        self._direct = config.transport == "aiohttp"

    def get(self) -> httpx.AsyncClient | AiohttpUpstream:
        loop = asyncio.get_running_loop()
        shared = self._clients.get(loop)
        if shared is None:
            shared = self._clients[loop] = self._build()
        return shared

    async def send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None = None, *, stream: bool = False
    ) -> UpstreamResponse:
        """Send, and return once the answer's headers are in; its body is read from the answer.
        With ``stream``, no read timeout: the caller bounds the reads."""
        client = self.get()
        if self._direct:
            return await client.send(method, url, headers, content, stream=stream)
        response = await client.send(self._httpx_request(method, url, headers, content, stream=stream), stream=True)
        return UpstreamResponse.of_httpx(response)

    def _httpx_request(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None, *, stream: bool = False
    ) -> httpx.Request:
        """What ``AsyncClient.build_request`` would build, for a client with no base URL,
        params or cookies: the client's default headers, then ``headers``."""
        merged = kept(self._headers, tuple(headers.items()), _merged, headers)
        # httpx.Request copies the headers it is given, so the kept ones are never changed.
        return httpx.Request(
            method,
            kept(self._urls, url, httpx.URL, url),
            headers=merged,
            content=content,
            extensions={"timeout": self._stream_timeout if stream else self._timeout},
        )

    async def aclose(self) -> None:
        """Close this loop's client (server shutdown)."""
        shared = self._clients.pop(asyncio.get_running_loop(), None)
        if shared is not None:
            await shared.aclose()

    def _build(self) -> httpx.AsyncClient | AiohttpUpstream:
        cfg = self.config
        if self._direct:
            from gateway.upstream_aiohttp import AiohttpUpstream

            return AiohttpUpstream(cfg, USER_AGENT)
        limits = httpx.Limits(max_connections=cfg.max_connections, max_keepalive_connections=cfg.max_connections)
        return _GatewayClient(timeout=_timeout(cfg), limits=limits, trust_env=False, headers=USER_AGENT)


def _merged(headers: dict[str, str]) -> httpx.Headers:
    merged = httpx.Headers(USER_AGENT)
    merged.update(headers)  # case-insensitive, as the client's own merge is
    return merged


def _timeout(cfg: GatewayConfig) -> httpx.Timeout:
    return httpx.Timeout(
        connect=cfg.connect_timeout, read=cfg.read_timeout, write=cfg.write_timeout, pool=cfg.pool_timeout
    )


class ResponseTooLarge(Exception):
    """An upstream answer longer than the caller would hold."""


async def read_bounded(response: UpstreamResponse, limit: int) -> bytes:
    """The whole body of a streamed response, and then it is closed. Never more than ``limit``
    bytes are held: past it (or a ``Content-Length`` above it) ``ResponseTooLarge``."""
    chunks: list[bytes] = []
    size = 0
    try:
        declared = _content_length(response.raw_headers)
        if declared is not None and declared > limit:
            raise ResponseTooLarge(limit)
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(limit)
            chunks.append(chunk)
    finally:
        await response.aclose()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _content_length(raw_headers) -> int | None:
    for name, value in raw_headers:
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None
