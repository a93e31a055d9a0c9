"""One shared ``httpx.AsyncClient`` per event loop (httpx clients must not cross loops)."""

from __future__ import annotations

import asyncio
import weakref

import httpx

from gateway.config import config

USER_AGENT = {"user-agent": "eldric-cloudd/0.1"}
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


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


def _build_client() -> httpx.AsyncClient:
    cfg = config()
    timeout = httpx.Timeout(
        connect=cfg.connect_timeout, read=cfg.read_timeout, write=cfg.write_timeout, pool=cfg.pool_timeout
    )
    limits = httpx.Limits(max_connections=cfg.max_connections, max_keepalive_connections=cfg.max_connections)
    if cfg.transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(limits=limits, trust_env=False)
        return _GatewayClient(transport=transport, timeout=timeout, trust_env=False, headers=USER_AGENT)
    return _GatewayClient(timeout=timeout, limits=limits, trust_env=False, headers=USER_AGENT)


def client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    shared = _clients.get(loop)
    if shared is None:
        shared = _clients[loop] = _build_client()
    return shared


async def close_client() -> None:
    """Close this loop's client (uvicorn lifespan shutdown; Daphne has no such hook)."""
    shared = _clients.pop(asyncio.get_running_loop(), None)
    if shared is not None:
        await shared.aclose()
