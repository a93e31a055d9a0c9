"""``GET /metrics``: the Prometheus text format, merged over every process of this machine
(the gateway and its Celery worker, see ``traffic.metrics``).

Open to loopback clients (``ELDRIC_METRICS_LOOPBACK_OPEN``); from anywhere else it takes
the admin token as ``Authorization: Bearer``. ``ELDRIC_METRICS_PUBLIC=1`` opens it to all.
"""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST

from backends.selectors import admin_token_matches
from traffic.metrics import exposition
from traffic.services import metrics_dir

logger = logging.getLogger(__name__)


def _error(status: int, message: str, code: str, **headers: str) -> JsonResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return JsonResponse(body, status=status, headers=headers)


def _loopback(request: HttpRequest) -> bool:
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _admin_token(request: HttpRequest) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and admin_token_matches(token.strip())


def allowed(request: HttpRequest) -> bool:
    if settings.ELDRIC_METRICS_PUBLIC:
        return True
    if settings.ELDRIC_METRICS_LOOPBACK_OPEN and _loopback(request):
        return True
    return _admin_token(request)


@csrf_exempt  # read-only; a POST gets the 405 below, not a CSRF page
def metrics(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _error(405, f"Use GET for {request.path}.", "method_not_allowed", Allow="GET, HEAD")
    if not allowed(request):
        return _error(
            401,
            "/metrics needs the admin token from a non-loopback address: 'Authorization: Bearer <token>'.",
            "invalid_api_key",
            **{"WWW-Authenticate": 'Bearer realm="eldric-admin"'},
        )
    try:
        body = exposition(str(metrics_dir()))
    except (OSError, ValueError, RuntimeError):
        # A file that cannot be read (a process killed mid-write, a full disk); prometheus-client
        # raises RuntimeError for a corrupted one.
        logger.exception("/metrics: cannot read the metrics files in %s", metrics_dir())
        return _error(503, "The metrics files cannot be read; see the server log.", "metrics_unavailable")
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
