"""The dashboard page and its JSON endpoint (the websocket is ``dashboard/consumers.py``).

Staff only; a Professional feature of the installation's (the default organisation's)
license. Below it the page names the tier needed, and the admin stays usable.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from backends.models import BackendKind
from backends.presets import PRESETS
from backends.providers.base import OpenAIError
from dashboard.frames import dashboard_denial
from dashboard.routing import WEBSOCKET_PATH
from dashboard.selectors import dashboard_state
from dashboard.traffic_selectors import RANGES, traffic_series
from orgs.license_gates import LicenseLimit
from orgs.license_tiers import Tier, tier_label

REQUIRED_TIER = tier_label(Tier.PROFESSIONAL)


@never_cache
@ensure_csrf_cookie  # the Configuration panel's writes to /api/v1 send it back as X-CSRFToken
@staff_member_required
def overview(request):
    if (denial := dashboard_denial()) is not None:
        context = {
            **admin.site.each_context(request),
            "title": "Dashboard",
            "message": denial.message,
            "code": LicenseLimit.code,
            "required_tier": REQUIRED_TIER,
        }
        return TemplateResponse(request, "dashboard/license_required.html", context, status=403)
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "websocket_path": "/" + WEBSOCKET_PATH,
        "backend_kinds": BackendKind.choices,
        "presets": {name: {"url": preset.url, "type": preset.kind} for name, preset in PRESETS.items()},
    }
    return TemplateResponse(request, "dashboard/overview.html", context)


def _refusal(request) -> JsonResponse | None:
    """The JSON endpoints' gate: a staff session, GET, the license."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        error = OpenAIError(403, "A staff login is required.", type="permission_denied", code="staff_login_required")
        return JsonResponse(error.as_dict(), status=403)
    if request.method != "GET":
        error = OpenAIError(405, "Only GET is allowed.", type="invalid_request_error", code="method_not_allowed")
        return JsonResponse(error.as_dict(), status=405)
    if (denial := dashboard_denial()) is not None:
        error = OpenAIError(403, denial.message, code=LicenseLimit.code)
        return JsonResponse(error.as_dict(), status=403)
    return None


@never_cache
def state_api(request):
    """GET /dashboard/api/state: what the websocket pushes, for the first paint and after a
    reconnect. A staff session only (the page's own cookie); never a redirect. Without the
    routing decisions, which are in the websocket's process's memory (``decisions: null``)."""
    if (refused := _refusal(request)) is not None:
        return refused
    return JsonResponse(dashboard_state())


@never_cache
def traffic_api(request):
    """GET /dashboard/api/traffic?range=1h|24h[&backend=NAME|&model=ID]: the Traffic panel's
    charts for one scope (the pushed state carries the whole gateway's last hour only)."""
    if (refused := _refusal(request)) is not None:
        return refused
    range_name = request.GET.get("range", "1h")
    if range_name not in RANGES:
        message = f"range must be one of: {', '.join(RANGES)}."
        error = OpenAIError(400, message, type="invalid_request_error", param="range", code="invalid_value")
        return JsonResponse(error.as_dict(), status=400)
    backend, model = request.GET.get("backend"), request.GET.get("model")
    if backend is not None and model is not None:
        message = "Give backend or model, not both."
        error = OpenAIError(400, message, type="invalid_request_error", param="model", code="invalid_value")
        return JsonResponse(error.as_dict(), status=400)
    # Longer than any stored label: no such row, and nothing to look up.
    if len(backend or "") > 64 or len(model or "") > 255:
        error = OpenAIError(400, "No such backend or model.", type="invalid_request_error", code="invalid_value")
        return JsonResponse(error.as_dict(), status=400)
    return JsonResponse(traffic_series(now=timezone.now(), range_name=range_name, backend=backend, model=model))
