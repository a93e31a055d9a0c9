from django.apps import AppConfig


class BackendsConfig(AppConfig):
    name = "backends"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from orgs.models import License, Organisation

        # Routing views depend on organisations (sharing) and licenses (priority routing).
        # ``orgs`` cannot import ``backends``, so the routing version moves from here, in the
        # same transaction as the write.
        for model in (License, Organisation):
            post_save.connect(_routing_inputs_changed, sender=model, dispatch_uid=f"routing-{model.__name__}-save")
            post_delete.connect(_routing_inputs_changed, sender=model, dispatch_uid=f"routing-{model.__name__}-del")


def _routing_inputs_changed(sender, **kwargs) -> None:
    from backends.services import routing_version_bump

    routing_version_bump()
