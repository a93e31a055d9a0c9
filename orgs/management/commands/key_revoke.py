"""Revoke a client key: it stops working in every gateway process within a second."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from orgs import keys


class Command(BaseCommand):
    help = "Revoke a client key by id."

    def add_arguments(self, parser) -> None:
        parser.add_argument("key_id")

    def handle(self, *args, **options) -> None:
        record = keys.key_get(options["key_id"])
        if record is None:
            raise CommandError(f"No client key with id {options['key_id']!r}.")
        keys.key_revoke(record)
        self.stdout.write(f"Revoked key {record.id} ({keys.key_display(record)}).\n")
