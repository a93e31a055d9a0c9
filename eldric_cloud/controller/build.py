"""Building the client for a running ``eldric-cloudd`` from its options and settings."""

from __future__ import annotations

from collections.abc import Callable

from eldric_cloud.controller.client import ControllerClient, ControllerConfig
from eldric_cloud.controller.protocol import advertised_address
from eldric_cloud.controller.source import GatewayLoadSource


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
    neither the client stays disabled (``start`` does nothing, ``/health`` says so).

    Call it before serving (it adds the last-minute window to the gateway's observers);
    call ``start()`` on the serving loop and ``aclose()`` when the drain begins.
    """
    from django.conf import settings

    config = ControllerConfig.from_settings(url=controller_url or settings.ELDRIC_CONTROLLER)
    address = advertised_address(bind_host=bind_host, port=port, advertise_url=settings.ELDRIC_ADVERTISE_URL)
    return ControllerClient(
        GatewayLoadSource.attach(gateway, connections=connections),
        config=config,
        address=address,
        instance=settings.ELDRIC_INSTANCE,
    )
