"""The dashboard. The live version (health, traffic, failovers) is a roadmap item; today it
points operators at the admin, which already shows backends, health and models."""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect


@staff_member_required
def overview(request):
    return redirect("admin:backends_backend_changelist")
