from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "orgs"
    verbose_name = "Organisations, licenses and client keys"

    def ready(self) -> None:
        from orgs.change_notices import ChangePublisher

        # Built once per process; it opens no connection until the first change is published.
        self.change_publisher = ChangePublisher()
