"""The default upstream transport: aiohttp, called directly (imported with the first upstream
request, so an idle gateway does not hold aiohttp).

httpx's ``AsyncClient.send`` over ``httpx-aiohttp`` built an ``httpx.Request``, ran the client's
auth, redirect and hook layers, turned the request's URL back into a string for aiohttp to
parse again, and wrapped aiohttp's answer in an ``httpx.Response`` with two stream layers:
about a sixth of a JSON request's CPU under py-spy, for nothing the gateway uses. Here a
request goes to aiohttp with its URL parsed once per backend, its headers merged once per
header set and its timeouts built once, and the answer is read from aiohttp's own stream.
Failures are raised as the httpx exceptions the rest of the gateway classifies
(``gateway/failures.py``), with aiohttp's exception as their cause.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import httpx
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from gateway.config import GatewayConfig
from gateway.upstream import UpstreamResponse, kept

# Most a compressed chunk may grow into per step: a small gzip bomb is read in bounded pieces.
DECODED_STEP = 256 * 1024

# aiohttp's failures as httpx's, the most specific match winning (ClientConnectorError is a
# ClientConnectionError too). A refused connection is a ConnectError; failures.py reads the cause.
_AS_HTTPX: tuple[tuple[type[BaseException], type[httpx.HTTPError]], ...] = (
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.TimeoutException),
    (aiohttp.ClientPayloadError, httpx.ReadError),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.InvalidUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientConnectionError, httpx.ConnectError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientError, httpx.TransportError),
    (TimeoutError, httpx.TimeoutException),
    # A body that says gzip or deflate and is not.
    (zlib.error, httpx.DecodingError),
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for kind, mapped in _AS_HTTPX:
            if isinstance(exc, kind):
                raise mapped(str(exc)) from exc
        raise


class AiohttpUpstream:
    """One aiohttp session (its connection pool) for one event loop."""

    def __init__(self, config: GatewayConfig, default_headers: dict[str, str]) -> None:
        self.config = config
        self.default_headers = default_headers
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, tuple[URL, httpx.URL]] = {}
        self._headers: dict[tuple, CIMultiDictProxy] = {}
        # ``connect`` bounds the wait for a pooled connection and the connect together, as
        # httpx's pool timeout did; ``sock_read`` each read.
        timeouts = {"sock_connect": config.connect_timeout, "connect": config.pool_timeout}
        self._timeout = aiohttp.ClientTimeout(sock_read=config.read_timeout, **timeouts)
        # A stream's body is bounded by its relay's idle deadline (gateway/streaming.py), and the
        # wait for its headers by the proxy: no per-read timer, which aiohttp re-arms per chunk.
        self._stream_timeout = aiohttp.ClientTimeout(sock_read=None, **timeouts)

    def _session_get(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.config.max_connections,
                keepalive_timeout=5.0,
                ssl=httpx.create_ssl_context(trust_env=False),
            )
            # No cookie jar: one pool serves every caller, so a kept cookie would be replayed
            # to the upstream on behalf of the others.
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
                trust_env=False,
            )
        return self._session

    def _parsed(self, url: str) -> tuple[URL, httpx.URL]:
        shown = httpx.URL(url)
        # httpx's form is quoted already: aiohttp takes it as it is, without parsing it again.
        return URL(str(shown), encoded=True), shown

    def _merged(self, headers: dict[str, str]) -> CIMultiDictProxy:
        merged = CIMultiDict(self.default_headers)
        for name, value in headers.items():
            merged[name] = value  # replaces, case-insensitively, as httpx's merge did
        return CIMultiDictProxy(merged)

    async def send(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None, *, stream: bool
    ) -> UpstreamResponse:
        target, shown = kept(self._urls, url, self._parsed, url)
        with _as_httpx_errors():
            response = await self._session_get().request(
                method,
                target,
                headers=kept(self._headers, tuple(headers.items()), self._merged, headers),
                data=content or None,
                allow_redirects=False,
                timeout=self._stream_timeout if stream else self._timeout,
            )
        return UpstreamResponse(response.status, response.raw_headers, shown, _body(response), _closer(response))

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _body(response: aiohttp.ClientResponse) -> Callable[[], AsyncIterator[bytes]]:
    async def chunks() -> AsyncIterator[bytes]:
        decoder = _decoder(response.headers.get("content-encoding", ""))
        content = response.content
        with _as_httpx_errors():
            while True:
                chunk = await content.readany()
                if not chunk:
                    break
                if decoder is None:
                    yield chunk
                    continue
                while chunk:
                    decoded = decoder.decompress(chunk, DECODED_STEP)
                    chunk = decoder.unconsumed_tail
                    if decoded:
                        yield decoded
            if decoder is not None and (rest := decoder.flush()):
                yield rest

    return chunks


def _closer(response: aiohttp.ClientResponse) -> Callable[[], Awaitable[None]]:
    async def close() -> None:
        # A body read to its end returns the connection to the pool; one left unread is dropped.
        with _as_httpx_errors():
            response.release()
            await response.wait_for_close()

    return close


def _decoder(encoding: str):
    """A decoder for what httpx would have decoded (gzip, deflate); anything else passes as is."""
    encoding = encoding.strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None
