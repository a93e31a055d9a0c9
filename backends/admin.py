from django import forms
from django.contrib import admin
from django.db.models import Count

from backends import services
from backends.models import Backend, DiscoveredModel, GatewaySettings, WorkerIdentity


class BackendForm(forms.ModelForm):
    # Write-only: the stored key is never rendered back into the page.
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the current key.",
    )

    class Meta:
        model = Backend
        fields = ["name", "kind", "url", "api_key", "priority", "enabled", "headers"]


@admin.register(Backend)
class BackendAdmin(admin.ModelAdmin):
    form = BackendForm
    list_display = [
        "name",
        "kind",
        "url",
        "health_status",
        "latency_ms",
        "model_count",
        "priority",
        "enabled",
        "source",
        "api_key_hint",
    ]
    list_filter = ["health_status", "enabled", "source", "kind"]
    readonly_fields = [
        "api_key_hint",
        "source",
        "health_status",
        "latency_ms",
        "last_checked_at",
        "last_error",
        "consecutive_failures",
        "models_refreshed_at",
    ]
    search_fields = ["name", "url"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_model_count=Count("models"))

    @admin.display(ordering="_model_count", description="models")
    def model_count(self, obj):
        return obj._model_count

    def save_model(self, request, obj, form, change):
        services.backend_save(backend=obj, api_key=form.cleaned_data.get("api_key") or None)

    def delete_model(self, request, obj):
        services.backend_delete(backend=obj)


@admin.register(DiscoveredModel)
class DiscoveredModelAdmin(admin.ModelAdmin):
    list_display = ["model_id", "backend", "capability", "discovered_at"]
    list_filter = ["backend", "capability"]
    search_fields = ["model_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(admin.ModelAdmin):
    list_display = ["default_backend", "health_interval_ms", "controller_url", "routing_version"]
    readonly_fields = ["routing_version"]


@admin.register(WorkerIdentity)
class WorkerIdentityAdmin(admin.ModelAdmin):
    list_display = ["instance", "worker_id", "created_at"]
    readonly_fields = ["instance", "worker_id", "created_at"]
