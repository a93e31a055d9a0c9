"""ASGI entry point: the gateway's lean handlers in front of Django and Channels.

The gateway answers ``/v1/*`` and ``/health`` itself; every other HTTP request goes to Django,
and websockets (the dashboard's, ``dashboard/routing.py``) to Channels, with the Django
session resolved into ``scope["user"]``.

Importing this module builds the application and nothing more: no thread starts and no
database is read. The server's start-up path calls ``gateway.start()`` (eldric-cloudd does
it before Daphne runs; under uvicorn the lifespan start-up does it).
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eldric_cloud.settings")

django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from dashboard.publisher import DashboardPublisher  # noqa: E402
from dashboard.routing import websocket_urlpatterns  # noqa: E402
from gateway.app import GatewayApplication  # noqa: E402
from gateway.pipeline import Gateway  # noqa: E402
from traffic.decisions import DecisionRing  # noqa: E402

gateway = Gateway.from_settings()
# The dashboard's routing-decisions panel: one deque append per finished request.
decisions = DecisionRing.from_settings()
gateway.observers.append(decisions)
dashboard_publisher = DashboardPublisher.from_settings(decisions=decisions)
fallback = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns(dashboard_publisher))),
    }
)
application = GatewayApplication(gateway, fallback)

# Everything loaded so far lives as long as the process. Moving it out of the collector's
# generations keeps full collections (tens of milliseconds over Django's object graph)
# from stalling requests.
gc.collect()
gc.freeze()
