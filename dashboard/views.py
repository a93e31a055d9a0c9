"""The dashboard page and its JSON endpoint (the websocket is ``dashboard/consumers.py``).

Staff only; a Professional feature of the installation's (the default organisation's)
license. Below it the page names the tier needed, and the admin stays usable.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache

from backends.providers.base import OpenAIError
from dashboard.frames import dashboard_denial
from dashboard.routing import WEBSOCKET_PATH
from dashboard.selectors import dashboard_state
from orgs.license_gates import LicenseLimit
from orgs.license_tiers import Tier, tier_label

REQUIRED_TIER = tier_label(Tier.PROFESSIONAL)


@never_cache
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
    context = {**admin.site.each_context(request), "title": "Dashboard", "websocket_path": "/" + WEBSOCKET_PATH}
    return TemplateResponse(request, "dashboard/overview.html", context)


@never_cache
def state_api(request):
    """GET /dashboard/api/state: what the websocket pushes, for the first paint and after a
    reconnect. A staff session only (the page's own cookie); never a redirect."""
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
    return JsonResponse(dashboard_state())
