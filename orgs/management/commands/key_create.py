"""Create a client key for /v1 and print it, once (options mirror POST /api/v1/keys)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from orgs import keys


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be positive")
    return value


class Command(BaseCommand):
    help = "Create a client key for /v1. The key is printed once; only its hash is stored."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--organisation", "--org", default="default", help="organisation slug (default: default)")
        parser.add_argument(
            "--models", action="append", default=[], help="allowed model glob, repeatable (default: every model)"
        )
        parser.add_argument("--rpm", type=_positive)
        parser.add_argument("--tpm", type=_positive)
        parser.add_argument("--max-concurrent", type=_positive)
        parser.add_argument("--budget-usd")
        parser.add_argument("--budget-period", choices=["day", "month"], default="month")
        parser.add_argument("--expires-at", help="ISO 8601 date-time, e.g. 2027-01-31T00:00:00Z")
        parser.add_argument("--json", action="store_true", help="print the record and the key as JSON")

    def handle(self, *args, **options) -> None:
        expires_at = None
        if options["expires_at"]:
            expires_at = parse_datetime(options["expires_at"])
            if expires_at is None:
                raise CommandError("--expires-at must be an ISO 8601 date-time.")
        try:
            created = keys.key_create(
                name=options["name"],
                organisation=options["organisation"],
                models=[m for pattern in options["models"] for m in pattern.split(",") if m] or None,
                expires_at=expires_at,
                rpm=options["rpm"],
                tpm=options["tpm"],
                max_concurrent=options["max_concurrent"],
                budget_usd=options["budget_usd"],
                budget_period=options["budget_period"],
            )
        except keys.KeyInvalid as exc:
            raise CommandError(f"{exc.field}: {exc}") from None
        record = created.record
        if options["json"]:
            summary = {"id": record.id, "name": record.name, "organisation": record.organisation.slug}
            self.stdout.write(json.dumps({**summary, "key": created.key}))
            return
        self.stdout.write(f"Created key {record.id} ({record.name}, organisation {record.organisation.slug}).\n")
        self.stdout.write("The key (shown only this once; only its hash is stored):\n")
        self.stdout.write(f"    {created.key}\n")
