"""ASGI entry point: the gateway's lean handlers in front of Django (and Channels later)."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eldric_cloud.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402

from gateway.app import GatewayApplication  # noqa: E402
from gateway.snapshot import holder  # noqa: E402

# Build the routing snapshot before the server accepts requests, then keep it fresh.
holder.start(settings.ELDRIC_SNAPSHOT_POLL_SECONDS)

application = GatewayApplication(django_application)

# Everything loaded so far lives as long as the process. Moving it out of the collector's
# generations keeps full collections (tens of milliseconds over Django's object graph)
# from stalling requests.
gc.collect()
gc.freeze()
