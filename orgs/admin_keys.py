"""Client keys in the admin. Creating one shows the key once, on the answer to the creation
itself (never in a message, whose cookie would carry it to the next page); afterwards only its
prefix is ever shown. Writes go through ``orgs.keys`` so each bumps the access version."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from orgs import keys
from orgs.models import ClientKey

EDITABLE = ["name", "allowed_models", "rpm", "tpm", "max_concurrent", "budget_usd", "budget_period", "expires_at"]


class ClientKeyForm(forms.ModelForm):
    class Meta:
        model = ClientKey
        fields = ["organisation", *EDITABLE, "enabled"]
        help_texts = {"allowed_models": 'Glob patterns as a JSON list, e.g. ["gpt-4o*"]; empty: every model.'}


@admin.register(ClientKey)
class ClientKeyAdmin(admin.ModelAdmin):
    form = ClientKeyForm
    list_display = ["name", "display_prefix", "organisation", "status", "rpm", "tpm", "budget_usd", "created_at"]
    list_filter = ["organisation", "enabled"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["display_prefix", "revoked_at", "created_at"]
    actions = ["revoke_keys"]

    @admin.display(description="key")
    def display_prefix(self, obj: ClientKey) -> str:
        return keys.key_display(obj) if obj.prefix else "-"

    @admin.display(description="status")
    def status(self, obj: ClientKey) -> str:
        return keys.key_status(obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            # A key cannot move to another organisation: its usage and budget belong to the old one.
            return [*self.readonly_fields, "organisation"]
        return self.readonly_fields

    def save_model(self, request, obj: ClientKey, form, change: bool) -> None:
        data = form.cleaned_data
        if change:
            changes = {name: data[name] for name in form.changed_data if name in (*EDITABLE, "enabled")}
            if "allowed_models" in changes:
                changes["models"] = changes.pop("allowed_models") or []
            keys.key_update(obj, **changes)
            return
        created = keys.key_create(
            name=data["name"],
            organisation=data["organisation"].slug,
            models=data.get("allowed_models") or [],
            expires_at=data.get("expires_at"),
            **{name: data.get(name) for name in ("rpm", "tpm", "max_concurrent", "budget_usd", "budget_period")},
        )
        # The admin reads obj.pk afterwards; the key itself goes only to response_add.
        obj.pk = created.record.pk
        obj.prefix = created.record.prefix
        request.eldric_new_key = created.key

    def response_add(self, request, obj: ClientKey, post_url_continue=None):
        key = getattr(request, "eldric_new_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {**self.admin_site.each_context(request), "key": key, "record": obj, "opts": self.model._meta}
        response = TemplateResponse(request, "admin/orgs/clientkey/created.html", context)
        add_never_cache_headers(response)  # no browser or proxy cache keeps the page
        return response

    def delete_model(self, request, obj: ClientKey) -> None:
        # Deleting would lose the usage history's key; revoke instead.
        keys.key_revoke(obj)

    def delete_queryset(self, request, queryset) -> None:
        for record in queryset:
            keys.key_revoke(record)

    @admin.action(description="Revoke the selected keys (they stop working within a second)")
    def revoke_keys(self, request, queryset) -> None:
        count = 0
        for record in queryset:
            if record.revoked_at is None:
                keys.key_revoke(record)
                count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)
