"""The dashboard. The live version (health, traffic, failovers) is a roadmap item; today it
points operators at the admin, which already shows backends, health and models.

It is a Professional feature of the installation's (the default organisation's) license."""

from django.contrib.admin.views.decorators import staff_member_required
from django.http import JsonResponse
from django.shortcuts import redirect

from backends.providers.base import OpenAIError
from orgs.license_gates import LicenseLimit, dashboard_check
from orgs.licenses import license_state_get


@staff_member_required
def overview(request):
    try:
        dashboard_check(license_state_get())
    except LicenseLimit as exc:
        error = OpenAIError(403, exc.message, code=LicenseLimit.code)
        return JsonResponse(error.as_dict(), status=403)
    return redirect("admin:backends_backend_changelist")
