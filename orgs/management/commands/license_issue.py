"""``manage.py license_issue``: sign a license file with a key from ``license_keygen``."""

import json
import os

from django.core.management.base import BaseCommand, CommandError

from orgs.license_files import LicenseInvalid, license_sign, private_key_load
from orgs.models import Tier


class Command(BaseCommand):
    help = "Issue a signed license file for an organisation."

    def add_arguments(self, parser):
        parser.add_argument("--private-key", required=True, metavar="PATH")
        parser.add_argument("--org", required=True, metavar="NAME", help="the organisation's slug, e.g. default")
        parser.add_argument("--tier", required=True, choices=Tier.values)
        parser.add_argument("--days", required=True, type=int, help="valid for this many days from now")
        parser.add_argument("--out", required=True, metavar="FILE", help="where to write the license file")
        parser.add_argument(
            "--overrides",
            default="{}",
            metavar="JSON",
            help='limits raised above the tier\'s, e.g. \'{"backends": 30, "cloud_workers": null}\' (null: unlimited)',
        )
        parser.add_argument("--license-id", help="default: a random lic-… id")

    def handle(self, *args, **options):
        try:
            with open(options["private_key"], "rb") as handle:
                private = private_key_load(handle.read())
        except OSError as exc:
            raise CommandError(f"cannot read {options['private_key']}: {exc.strerror}") from None
        except LicenseInvalid as exc:
            raise CommandError(f"{options['private_key']}: {exc}") from None
        try:
            overrides = json.loads(options["overrides"])
        except ValueError:
            raise CommandError("--overrides: not JSON") from None
        try:
            document = license_sign(
                private,
                organisation=options["org"],
                tier=options["tier"],
                days=options["days"],
                overrides=overrides,
                license_id=options.get("license_id"),
            )
        except LicenseInvalid as exc:
            raise CommandError(str(exc)) from None
        out = options["out"]
        try:
            with open(out, "w", encoding="utf-8") as handle:
                handle.write(document)
        except OSError as exc:
            raise CommandError(f"cannot write {out}: {exc.strerror}") from None
        payload = json.loads(document)["payload"]
        self.stdout.write(
            f"{payload['license_id']}: {payload['tier']} for organisation {payload['organisation']}, "
            f"expires {payload['expires_at']}, written to {os.path.abspath(out)}"
        )
