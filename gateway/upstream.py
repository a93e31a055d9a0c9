"""An upstream answer, whichever transport carried it: what the gateway reads of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx

K = TypeVar("K")
V = TypeVar("V")
A = TypeVar("A")

# Distinct upstream URLs and header sets kept parsed; past it, the cache starts again.
CACHE_SIZE = 1024


def kept(cache: dict[K, V], key: K, make: Callable[[A], V], argument: A) -> V:
    """``cache[key]``, made from ``argument`` the first time. An adapter sends the same URL and
    headers to a backend every time, so what the transport builds from them is built once."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        value = cache[key] = make(argument)
    return value


class UpstreamResponse:
    """What the gateway reads of an upstream answer: its status, headers, URL and body."""

    __slots__ = ("_chunks", "_close", "_headers", "raw_headers", "status_code", "url")

    def __init__(
        self,
        status_code: int,
        raw_headers: list[tuple[bytes, bytes]] | tuple,
        url: httpx.URL,
        chunks: Callable[[], AsyncIterator[bytes]],
        close: Callable[[], Awaitable[None]],
    ) -> None:
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.url = url
        self._chunks = chunks
        self._close = close
        self._headers: httpx.Headers | None = None

    @classmethod
    def of_httpx(cls, response: httpx.Response) -> UpstreamResponse:
        """An answer the httpx transport carried (``ELDRIC_HTTP_TRANSPORT=httpx``)."""
        return cls(response.status_code, response.headers.raw, response.url, response.aiter_bytes, response.aclose)

    @property
    def headers(self) -> httpx.Headers:
        """Case-insensitive headers, built when first asked for (error answers; not the relay)."""
        if self._headers is None:
            self._headers = httpx.Headers(list(self.raw_headers))
        return self._headers

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as sent, decoded if the upstream compressed it though asked not to."""
        return self._chunks()

    aiter_raw = aiter_bytes

    async def aclose(self) -> None:
        await self._close()
