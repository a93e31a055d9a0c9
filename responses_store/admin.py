from django.contrib import admin

from responses_store.models import StoredResponse


@admin.register(StoredResponse)
class StoredResponseAdmin(admin.ModelAdmin):
    # Prompts and answers are the organisation's data: listed, never edited here.
    list_display = ("response_id", "organisation", "model", "created_at")
    list_filter = ("organisation",)
    search_fields = ("response_id",)
    readonly_fields = ("response_id", "organisation", "model", "input_items", "output_items", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
