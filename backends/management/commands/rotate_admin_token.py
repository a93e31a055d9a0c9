"""Replace the stored admin token for /api/v1 and print the new one, once."""

from django.conf import settings
from django.core.management.base import BaseCommand

from backends.services import admin_token_rotate


class Command(BaseCommand):
    help = "Generate a new admin token for the management API; the old one stops working at once."

    def handle(self, *args, **options) -> None:
        token = admin_token_rotate(actor="rotate_admin_token")
        self.stdout.write("New admin token (shown only this once; only its hash is stored):\n")
        self.stdout.write(f"    {token}\n")
        if settings.ELDRIC_ADMIN_TOKEN:
            self.stderr.write(
                "Note: ELDRIC_ADMIN_TOKEN is set and takes precedence; this token works only once it is unset."
            )
