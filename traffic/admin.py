from django.contrib import admin

from traffic.models import BackendLiveState, TrafficDay, TrafficMinute


class ReadOnlyAdmin(admin.ModelAdmin):
    """Roll-ups are written by the gateway alone; an edit here would falsify them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


ROLLUP_COLUMNS = [
    "backend",
    "model",
    "requests",
    "errors",
    "failovers",
    "prompt_tokens",
    "completion_tokens",
    "client_disconnects",
]


@admin.register(TrafficMinute)
class TrafficMinuteAdmin(ReadOnlyAdmin):
    list_display = ["bucket", *ROLLUP_COLUMNS]
    list_filter = ["backend"]
    search_fields = ["model"]
    date_hierarchy = "bucket"


@admin.register(TrafficDay)
class TrafficDayAdmin(ReadOnlyAdmin):
    list_display = ["day", *ROLLUP_COLUMNS]
    list_filter = ["backend"]
    search_fields = ["model"]
    date_hierarchy = "day"


@admin.register(BackendLiveState)
class BackendLiveStateAdmin(ReadOnlyAdmin):
    list_display = ["backend", "instance", "circuit", "rate_limited_until", "updated_at"]
    list_filter = ["circuit", "instance"]
