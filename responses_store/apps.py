from django.apps import AppConfig


class ResponsesStoreConfig(AppConfig):
    name = "responses_store"
    verbose_name = "Stored responses"
    default_auto_field = "django.db.models.BigAutoField"
