"""The admin for organisations and their licenses.

A license is added by pasting its file's content or uploading the file; it replaces the
organisation's previous license. The list shows each license's state, and a warning while a
license is in its grace period, expired or not honoured.
"""

from django import forms
from django.contrib import admin, messages
from django.utils import timezone

from orgs.license_files import MAX_DOCUMENT_BYTES, LicenseInvalid, license_verify
from orgs.licenses import license_state_get, license_states_get, trusted_keys
from orgs.models import License, Organisation
from orgs.services import access_version_bump, license_install, license_remove


class LicenseUploadForm(forms.ModelForm):
    document = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "cols": 90, "spellcheck": "false"}),
        label="License file content",
        help_text="Paste the whole file written by `manage.py license_issue`, or upload it below.",
    )
    upload = forms.FileField(required=False, label="…or upload the license file")

    class Meta:
        model = License
        fields: list[str] = []

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("upload")
        if upload is not None:
            if upload.size > MAX_DOCUMENT_BYTES:
                raise forms.ValidationError("That file is too large to be a license file.")
            text = upload.read()
        else:
            text = (cleaned.get("document") or "").strip()
        if not text:
            raise forms.ValidationError("Paste the license file's content or upload the file.")
        try:
            license_verify(text, trusted_keys())
        except LicenseInvalid as exc:
            raise forms.ValidationError(f"Not a valid license: {exc}.") from None
        cleaned["verified_document"] = text
        return cleaned


@admin.register(License)
class LicenseAdmin(admin.ModelAdmin):
    list_display = [
        "organisation",
        "license_id",
        "tier",
        "effective_tier",
        "status",
        "issued_at",
        "expires_at",
        "grace_until",
        "installed_at",
    ]
    search_fields = ["organisation__slug", "license_id"]
    readonly_fields = ["organisation", "license_id", "tier", "overrides", "issued_at", "expires_at", "installed_at"]
    exclude = ["document"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = LicenseUploadForm
            kwargs["fields"] = ["document", "upload"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_exclude(self, request, obj=None):
        return [] if obj is None else self.exclude

    def has_change_permission(self, request, obj=None):
        # A license is replaced by adding a new one, never edited: its content is signed.
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        installed = license_install(document=form.cleaned_data["verified_document"])
        # The admin goes on with ``obj`` (its message and redirect): make it the installed row.
        obj.pk, obj.id = installed.pk, installed.pk
        obj.organisation_id = installed.organisation_id
        obj.license_id, obj.tier = installed.license_id, installed.tier

    def delete_model(self, request, obj):
        license_remove(organisation=obj.organisation.slug)

    def delete_queryset(self, request, queryset):
        for row in queryset.select_related("organisation"):
            license_remove(organisation=row.organisation.slug)

    def _state(self, obj):
        return license_state_get(obj.organisation.slug)

    @admin.display(description="in force")
    def effective_tier(self, obj):
        return self._state(obj).effective_tier()

    @admin.display(description="status")
    def status(self, obj):
        return self._state(obj).status()

    @admin.display(description="grace until")
    def grace_until(self, obj):
        return self._state(obj).grace_until

    def changelist_view(self, request, extra_context=None):
        _warn(request, self)
        return super().changelist_view(request, extra_context)


def _warn(request, model_admin) -> None:
    """Every warning (grace, expired, not honoured), shown on each visit of the lists."""
    now = timezone.now()
    for state in license_states_get().values():
        if text := state.warning(now):
            model_admin.message_user(request, text, messages.WARNING)


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "share_default_backends", "license_tier", "license_status", "created_at"]
    search_fields = ["slug", "name"]
    fields = [
        "slug",
        "name",
        "share_default_backends",
        "rpm",
        "tpm",
        "max_concurrent",
        "budget_usd",
        "budget_period",
        "license_summary",
    ]
    readonly_fields = ["license_summary"]

    def get_readonly_fields(self, request, obj=None):
        # The slug is what licenses, keys and the API name: it stays once created.
        return ["slug", *self.readonly_fields] if obj is not None else self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_default:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        access_version_bump()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        access_version_bump()

    def delete_queryset(self, request, queryset):
        queryset.exclude(slug="default").delete()
        access_version_bump()

    @admin.display(description="tier")
    def license_tier(self, obj):
        return license_state_get(obj.slug).effective_tier()

    @admin.display(description="license")
    def license_status(self, obj):
        return license_state_get(obj.slug).status()

    @admin.display(description="license")
    def license_summary(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        state = license_state_get(obj.slug).describe()
        text = f"{state['tier']} ({state['status']})"
        if state["license_id"]:
            text += f", {state['license_id']}, expires {state['expires_at']}"
        if state["warning"]:
            text += f". {state['warning']}"
        return text

    def changelist_view(self, request, extra_context=None):
        _warn(request, self)
        return super().changelist_view(request, extra_context)
