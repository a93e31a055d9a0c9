from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html
from rest_framework import serializers

from backends import services
from backends.models import (
    AuditLog,
    AuditSource,
    Backend,
    BackendSource,
    DiscoveredModel,
    GatewaySettings,
    WorkerIdentity,
)
from backends.selectors import backend_live, backend_routable, instance_describe
from backends.serializers import validate_headers, validate_instances, validate_upstream_url
from backends.status import STATUSES, backend_status
from backends.url_policy import UrlDenied
from orgs.license_gates import LicenseLimit
from orgs.models import Organisation
from orgs.services import default_organisation_pk
from traffic.selectors import BackendLive

# Probe health in the same colours as the combined status.
HEALTH_COLOURS = {
    "healthy": STATUSES["healthy"][1],
    "unhealthy": STATUSES["unhealthy"][1],
    "auth_failed": STATUSES["auth_failed"][1],
    "unknown": STATUSES["unknown"][1],
}


def _figure(value) -> str:
    return "-" if value is None else str(value)


def coloured(text: str, colour: str, title: str = ""):
    return format_html(
        '<span class="eldric-status" style="color:{};font-weight:bold" title="{}">&#9679; {}</span>',
        colour,
        title,
        text,
    )


class BackendForm(forms.ModelForm):
    # The API's rule (http or https, any host name: "http://ollama:11434" is fine), not URLField's.
    url = forms.CharField(max_length=500)
    # Write-only: the stored key is never rendered back into the page.
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the current key.",
    )

    class Meta:
        model = Backend
        fields = [
            "name",
            "organisation",
            "kind",
            "url",
            "api_key",
            "priority",
            "enabled",
            "headers",
            "instances",
            "responses_api",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if "organisation" in self.fields:
            # Left empty, a backend belongs to the default organisation.
            self.fields["organisation"].required = False
            self.fields["organisation"].help_text = "Empty: the default organisation."
        if "instances" in self.fields:
            self.fields["instances"].required = False
            self.fields[
                "instances"
            ].help_text = (
                'Pin to these instances (ELDRIC_INSTANCE names), e.g. ["eu-1", "eu-2"]. Empty: every instance.'
            )

    def clean_organisation(self):
        chosen = self.cleaned_data.get("organisation")
        return chosen or Organisation.objects.get(pk=default_organisation_pk())

    def _get_validation_exclusions(self):
        # The model's URLField would reject "http://ollama:11434"; clean_url applies the API's rule.
        return {*super()._get_validation_exclusions(), "url"}

    def clean_url(self) -> str:
        try:
            return validate_upstream_url(self.cleaned_data["url"])
        except serializers.ValidationError as exc:
            raise forms.ValidationError(exc.detail[0]) from None

    def clean_instances(self) -> list[str]:
        try:
            return validate_instances(self.cleaned_data.get("instances") or [])
        except serializers.ValidationError as exc:
            raise forms.ValidationError(exc.detail[0]) from None

    def clean_headers(self) -> dict:
        headers = self.cleaned_data["headers"] or {}
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise forms.ValidationError('Headers are a JSON object of strings, e.g. {"X-Team": "ml"}.')
        try:
            return validate_headers(headers)
        except serializers.ValidationError as exc:
            raise forms.ValidationError(exc.detail[0]) from None


def _actor(request) -> str:
    return request.user.get_username()


def _traffic_summary(window) -> str:
    if not window.requests and not window.failovers:
        return "-"
    text = f"{window.requests} req, {window.errors} err, {window.failovers} failovers"
    if window.p50_ms is not None:
        text += f", p50 {window.p50_ms:g} ms, p95 {window.p95_ms:g} ms"
    return text


def license_limit_response(request, exc: LicenseLimit) -> HttpResponse:
    """403 in the admin's look, with the error's code so scripts and tests can tell."""
    response = TemplateResponse(
        request,
        "admin/license_limit.html",
        {**admin.site.each_context(request), "title": "License limit", "message": exc.message, "code": exc.code},
        status=403,
    )
    return response


class BackendChangeList(ChangeList):
    """Reads the live state of the listed backends in one go, not once per row."""

    def get_results(self, request):
        super().get_results(request)
        live = backend_live(names=[b.name for b in self.result_list])
        for backend in self.result_list:
            backend._live = live.get(backend.name) or BackendLive()


@admin.register(Backend)
class BackendAdmin(admin.ModelAdmin):
    form = BackendForm
    list_display = [
        "name",
        "organisation",
        "kind",
        "url",
        "status",
        "health_status",
        "circuit",
        "rate_limit",
        "routable",
        "traffic_5m",
        "traffic_60m",
        "latency_ms",
        "model_count",
        "priority",
        "enabled",
        "source",
        "instance_list",
        "api_key_hint",
    ]
    list_filter = ["organisation", "health_status", "enabled", "source", "kind"]
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
    # Static backends are rewritten from flags or the config file on every start and reload.
    static_readonly_fields = ["name", "organisation", "kind", "url", "priority", "headers", "instances"]
    search_fields = ["name", "url"]
    actions = ["test_connectivity", "enable", "disable"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("organisation").annotate(_model_count=Count("models"))

    # A change the owner's license does not allow answers 403 license_limit, naming the tier
    # and the limit; the transaction around the save is rolled back.
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except LicenseLimit as exc:
            return license_limit_response(request, exc)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except LicenseLimit as exc:
            return license_limit_response(request, exc)

    @admin.display(description="instances")
    def instance_list(self, obj):
        return ", ".join(obj.instances) if obj.instances else "all"

    @admin.display(ordering="_model_count", description="models")
    def model_count(self, obj):
        return obj._model_count

    def get_changelist(self, request, **kwargs):
        return BackendChangeList

    def _live(self, obj) -> BackendLive:
        live = getattr(obj, "_live", None)
        return live if live is not None else backend_live(names=[obj.name]).get(obj.name) or BackendLive()

    @admin.display(description="status")
    def status(self, obj):
        state = backend_status(obj, self._live(obj))
        return coloured(state.label, state.colour, state.reason)

    @admin.display(ordering="health_status", description="probe health")
    def health_status(self, obj):
        colour = HEALTH_COLOURS.get(obj.health_status, "#6b7280")
        return coloured(obj.get_health_status_display(), colour, obj.last_error)

    @admin.display(description="circuit")
    def circuit(self, obj):
        # Plain text (the status column has the colour): scripts read this cell.
        return self._live(obj).circuit

    @admin.display(description="rate limit")
    def rate_limit(self, obj):
        until = self._live(obj).rate_limited_until
        if until is None:
            return "-"
        return coloured(f"until {until:%H:%M:%S} UTC", STATUSES["rate_limited"][1])

    @admin.display(description="routable", boolean=True)
    def routable(self, obj):
        return backend_routable(obj, self._live(obj))

    @admin.display(description="last 5 min")
    def traffic_5m(self, obj):
        return _traffic_summary(self._live(obj).window(5))

    @admin.display(description="last 60 min")
    def traffic_60m(self, obj):
        return _traffic_summary(self._live(obj).window(60))

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.source == BackendSource.STATIC:
            return [*self.static_readonly_fields, *self.readonly_fields]
        return self.readonly_fields

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and obj.source == BackendSource.STATIC:
            return [f for f in fields if f != "api_key"]
        return fields

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.source == BackendSource.STATIC:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        services.backend_save(
            backend=obj,
            api_key=form.cleaned_data.get("api_key") or None,
            actor=_actor(request),
            source=AuditSource.ADMIN,
        )

    def delete_model(self, request, obj):
        services.backend_delete(backend=obj, actor=_actor(request), source=AuditSource.ADMIN)

    def delete_queryset(self, request, queryset):
        # The bulk action would skip the service (and so the audit log and routing version).
        for backend in queryset:
            if backend.source != BackendSource.STATIC:
                try:
                    services.backend_delete(backend=backend, actor=_actor(request), source=AuditSource.ADMIN)
                except LicenseLimit as exc:
                    self.message_user(request, f"{backend.name}: {exc.message}", messages.ERROR)

    @admin.action(description="Test connectivity of the selected backends")
    def test_connectivity(self, request, queryset):
        for backend in queryset:
            try:
                result = services.backend_test(backend=backend)
            except UrlDenied as exc:
                self.message_user(request, f"{backend.name}: not tested, url not allowed: {exc}", messages.ERROR)
                continue
            level = messages.SUCCESS if result.status == "healthy" else messages.WARNING
            detail = (
                f"{len(result.models)} models, {result.latency_ms} ms" if result.status == "healthy" else result.error
            )
            self.message_user(request, f"{backend.name}: {result.status} ({detail})", level)

    @admin.action(description="Enable the selected backends")
    def enable(self, request, queryset):
        self._set_enabled(request, queryset, enabled=True)

    @admin.action(description="Disable the selected backends")
    def disable(self, request, queryset):
        self._set_enabled(request, queryset, enabled=False)

    def _set_enabled(self, request, queryset, *, enabled: bool) -> None:
        changed = 0
        for backend in queryset:
            if backend.enabled != enabled:
                services.backend_set_enabled(
                    backend=backend, enabled=enabled, actor=_actor(request), source=AuditSource.ADMIN
                )
                changed += 1
        self.message_user(request, f"{'Enabled' if enabled else 'Disabled'} {changed} backend(s).", messages.SUCCESS)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DiscoveredModel)
class DiscoveredModelAdmin(ReadOnlyAdmin):
    list_display = ["model_id", "backend", "capability", "discovered_at"]
    list_filter = ["backend", "capability"]
    search_fields = ["model_id"]


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "source", "action", "backend_name", "changes"]
    list_filter = ["source", "action"]
    search_fields = ["backend_name", "actor"]
    date_hierarchy = "created_at"


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(admin.ModelAdmin):
    """Installation-wide state only; each instance's settings are under Worker identities."""

    list_display = ["__str__", "routing_version"]
    readonly_fields = ["routing_version"]
    exclude = ["admin_token_hash"]

    # One row (pk=1) the gateway reads; deleting it would reset the routing version.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class WorkerIdentityForm(forms.ModelForm):
    class Meta:
        model = WorkerIdentity
        fields = ["default_backend", "health_interval_ms", "controller_url"]

    def clean_health_interval_ms(self) -> int:
        value = self.cleaned_data["health_interval_ms"]
        if value < 100:  # as --health-interval and the config file
            raise forms.ValidationError("At least 100 ms.")
        return value


@admin.register(WorkerIdentity)
class WorkerIdentityAdmin(admin.ModelAdmin):
    """One row per instance: its id and its own settings. Start-up and reload rewrite them
    from the instance's flags or config file."""

    list_display = [
        "instance",
        "worker_id",
        "live",
        "uptime",
        "load",
        "controller",
        "default_backend",
        "health_interval_ms",
        "last_seen_at",
    ]
    fields = [
        "instance",
        "worker_id",
        "live",
        "uptime",
        "load",
        "process",
        "controller",
        "default_backend",
        "health_interval_ms",
        "controller_url",
        "last_seen_at",
        "created_at",
    ]
    readonly_fields = [name for name in fields if name not in WorkerIdentityForm.Meta.fields]
    form = WorkerIdentityForm

    # What the instance's last heartbeat reported (WorkerIdentity.report), as the dashboard shows it.
    @staticmethod
    def _described(obj: WorkerIdentity) -> dict:
        return instance_describe(obj, now=timezone.now())

    @admin.display(description="Live")
    def live(self, obj: WorkerIdentity):
        described = self._described(obj)
        age = described["heartbeat_age_seconds"]
        if described["live"]:
            return coloured(f"live (heartbeat {age:.0f} s ago)", STATUSES["healthy"][1])
        return coloured("not live" if age is None else f"not live (heartbeat {age:.0f} s ago)", STATUSES["disabled"][1])

    @admin.display(description="Uptime")
    def uptime(self, obj: WorkerIdentity) -> str:
        seconds = self._described(obj)["uptime_seconds"]
        return "-" if seconds is None else str(timedelta(seconds=seconds))

    @admin.display(description="Load")
    def load(self, obj: WorkerIdentity) -> str:
        described = self._described(obj)
        report = described["report"]
        if not described["live"] or "requests_in_flight" not in report:
            return "-"
        return (
            f"{report['requests_in_flight']} in flight, {report['active_connections']} connections, "
            f"{_figure(report.get('requests_per_minute'))} req/min, {_figure(report.get('errors_per_minute'))} "
            f"errors/min, p50 {_figure(report.get('p50_latency_ms'))} ms"
        )

    @admin.display(description="Process")
    def process(self, obj: WorkerIdentity) -> str:
        report = self._described(obj)["report"]
        if "pid" not in report:
            return "-"
        rss = report.get("process_rss_bytes")
        return (
            f"eldric-cloudd {report.get('version')} ({report.get('server')}), pid {report['pid']}, "
            f"CPU {_figure(report.get('process_cpu_percent'))} %, "
            f"RSS {'-' if rss is None else f'{rss / 1048576:.0f} MB'}, since {report.get('started_at')}"
        )

    @admin.display(description="Controller")
    def controller(self, obj: WorkerIdentity):
        state = self._described(obj)["report"].get("controller")
        if not isinstance(state, dict) or not state.get("configured"):
            return "none configured"
        ok = state.get("state") == "registered"
        detail = (
            f"{state.get('url')}; last success {state.get('last_success') or 'never'}; "
            f"{state.get('consecutive_failures')} consecutive failures"
        )
        if state.get("last_error"):
            detail += f"; last error {state['last_error']} at {state.get('last_error_at')}"
        colour = STATUSES["healthy" if ok else "unhealthy"][1]
        return format_html("{} {}", coloured(state.get("state", "unknown"), colour), detail)

    # Each instance creates its own row at start-up; deleting it would give the running
    # instance a new cld- id on its next start and lose its settings.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        # Through the service, so the instance's gateway sees the change (routing version).
        services.instance_settings_update(
            instance=obj.instance,
            default_backend=obj.default_backend,
            health_interval_ms=obj.health_interval_ms,
            controller_url=obj.controller_url,
        )
