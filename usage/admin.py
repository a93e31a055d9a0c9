"""The admin: prices (editable), usage per organisation and per key (read only), with totals."""

from django.contrib import admin
from django.db import transaction
from django.db.models import Sum

from orgs.services import access_version_bump
from usage.models import ModelPrice, UsageDay, UsageRecord
from usage.selectors import counters_format
from usage.services import model_price_delete, model_price_save


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "model",
        "provider",
        "input_per_million",
        "cached_input_per_million",
        "output_per_million",
        "reasoning_per_million",
        "as_of",
    ]
    list_filter = ["provider"]
    search_fields = ["model", "provider"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "source_url":
            kwargs["assume_scheme"] = "https"  # pricing pages are https; also Django 6's default
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    # Through the services: every price write makes every gateway reload its price book.
    def save_model(self, request, obj, form, change):
        model_price_save(obj)

    def delete_model(self, request, obj):
        model_price_delete(obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            queryset.delete()
            access_version_bump()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Usage is written by the gateway alone; an edit here would falsify what was billed."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class UnpricedFilter(admin.SimpleListFilter):
    title = "priced"
    parameter_name = "unpriced"

    def lookups(self, request, model_admin):
        return [("yes", "Has unpriced requests"), ("no", "Fully priced")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(unpriced_requests__gt=0)
        if self.value() == "no":
            return queryset.filter(unpriced_requests=0)
        return queryset


@admin.register(UsageDay)
class UsageDayAdmin(ReadOnlyAdmin):
    list_display = [
        "day",
        "organisation",
        "key_label",
        "model",
        "backend",
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cost",
        "unpriced_requests",
    ]
    list_filter = ["organisation", "key_prefix", "backend", UnpricedFilter]
    search_fields = ["model", "key_prefix", "organisation"]
    date_hierarchy = "day"

    @admin.display(description="key")
    def key_label(self, obj):
        if not obj.key_ref:
            return "-"
        return f"eld-{obj.key_prefix}… (#{obj.key_ref})" if obj.key_prefix else f"#{obj.key_ref} (deleted)"

    @admin.display(description="cost (USD)")
    def cost(self, obj):
        text = f"{obj.cost_usd:.6f}"
        return f"{text} + unpriced" if obj.unpriced_requests else text

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        # Totals over everything the filters select, not only the page shown.
        try:
            queryset = response.context_data["cl"].queryset
        except (AttributeError, KeyError):
            return response
        names = [
            "requests",
            "errors",
            "input_tokens",
            "cached_tokens",
            "output_tokens",
            "reasoning_tokens",
            "cost_nanos",
            "unpriced_requests",
        ]
        response.context_data["usage_totals"] = counters_format(queryset.aggregate(**{n: Sum(n) for n in names}))
        return response


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = [
        "time",
        "organisation",
        "key_prefix",
        "model",
        "backend",
        "status",
        "input_tokens",
        "output_tokens",
        "cost",
        "latency_ms",
        "instance",
    ]
    list_filter = ["organisation", "status", "unpriced", "backend"]
    search_fields = ["request_id", "model", "key_prefix"]
    date_hierarchy = "time"
    show_full_result_count = False

    @admin.display(description="cost (USD)")
    def cost(self, obj):
        return "unpriced" if obj.unpriced else f"{obj.cost_usd or 0:.6f}"
