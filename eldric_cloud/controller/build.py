"""Building the client for a running ``eldric-cloudd`` from its options and settings, and
moving it to another controller when a config reload names one."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable

from eldric_cloud.controller.client import ControllerClient, ControllerConfig, display_url
from eldric_cloud.controller.protocol import advertised_address
from eldric_cloud.controller.source import GatewayLoadSource

logger = logging.getLogger("eldric_cloud.controller")


def controller_client_build(
    gateway,
    *,
    controller_url: str,
    bind_host: str,
    port: int,
    connections: Callable[[], int] | None = None,
) -> ControllerClient:
    """The client for this process's gateway. ``controller_url`` is ``--controller`` (or the
    config file's ``controller_url``); empty falls back to ``ELDRIC_CONTROLLER``, and with
    neither the client stays disabled (``start`` only notes the serving loop, ``/health``
    says disabled) until ``controller_url_apply`` gives it one.

    Call it before serving; call ``start()`` on the serving loop and ``aclose()`` when the
    drain begins.
    """
    from django.conf import settings

    config = ControllerConfig.from_settings(url=controller_url or settings.ELDRIC_CONTROLLER)
    address = advertised_address(bind_host=bind_host, port=port, advertise_url=settings.ELDRIC_ADVERTISE_URL)
    return ControllerClient(
        # The last-minute window observes requests only while there is a controller to report to.
        GatewayLoadSource.attach(gateway, connections=connections, observe=bool(config.url)),
        config=config,
        address=address,
        instance=settings.ELDRIC_INSTANCE,
    )


def controller_url_apply(controller_url: str) -> bool:
    """From the config reloader's thread: point this process's running client at
    ``controller_url`` (empty falls back to ``ELDRIC_CONTROLLER``; neither stops the client).

    The running gateway is ``eldric_cloud.asgi.gateway``, looked up only if the server has
    imported it: in a process that serves nothing (a test, a management command) there is
    no client to move, and importing the module would build the whole application. Returns
    whether the client's URL changed.
    """
    from django.conf import settings

    url = controller_url or settings.ELDRIC_CONTROLLER
    asgi = sys.modules.get("eldric_cloud.asgi")
    client = getattr(getattr(asgi, "gateway", None), "controller", None)
    if not isinstance(client, ControllerClient):
        if url:
            logger.warning("controller: %s takes a restart (this process has no controller client)", display_url(url))
        return False
    if url == client.config.url:
        return False
    source = client.source
    if isinstance(source, GatewayLoadSource):
        _on_loop(client, lambda: source.observe(bool(url)))
    return client.retarget_threadsafe(url)


def _on_loop(client: ControllerClient, callback: Callable[[], None]) -> None:
    # Observers are the serving loop's list: change it there (or now, before serving starts).
    loop = client.loop
    if loop is None:
        callback()
        return
    with contextlib.suppress(RuntimeError):  # the loop is closed: the process is stopping
        loop.call_soon_threadsafe(callback)
