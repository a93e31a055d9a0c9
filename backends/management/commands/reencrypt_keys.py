"""Re-encrypt every stored upstream key under the first key of ELDRIC_ENCRYPTION_KEY.

Rotation, with every process (gateway, Celery worker, other instances) on the same settings:

1. ``python manage.py reencrypt_keys --generate`` prints a new Fernet key.
2. Set ``ELDRIC_ENCRYPTION_KEY=<new>,<old>`` everywhere and restart (the old key is the
   previous value of the variable, or the contents of ``$ELDRIC_DATA_DIR/encryption.key``
   when the variable was unset). Every process can now read both.
3. ``python manage.py reencrypt_keys``: all keys are re-encrypted under ``<new>`` in one
   transaction.
4. Set ``ELDRIC_ENCRYPTION_KEY=<new>`` and restart; the old key can then be destroyed.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from backends import crypto
from backends.models import Backend
from eldric_cloud.datadir import data_dir_secret


class Command(BaseCommand):
    help = "Re-encrypt every stored upstream API key under the first key of ELDRIC_ENCRYPTION_KEY."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--generate", action="store_true", help="print a new Fernet key and exit (the database is not touched)"
        )

    def handle(self, *args, generate: bool = False, **options) -> None:
        if generate:
            self.stdout.write(Fernet.generate_key().decode())
            return
        crypto.reset_cache()  # the keys in this process's settings, not a cached earlier set
        keys = settings.ELDRIC_ENCRYPTION_KEYS
        if not keys:
            self.stderr.write(
                "ELDRIC_ENCRYPTION_KEY is not set: the keys stay under the data-dir key "
                f"{settings.ELDRIC_ENCRYPTION_KEY_FILE}. To rotate, set ELDRIC_ENCRYPTION_KEY=<new>,<that key>."
            )
        first = keys[0] if keys else data_dir_secret(settings.ELDRIC_ENCRYPTION_KEY_FILE, factory=_new_key)
        newest = Fernet(first.encode())
        where = "the first key of ELDRIC_ENCRYPTION_KEY" if keys else "the data-dir key"
        rotated = current = 0
        unreadable: list[str] = []
        with transaction.atomic():
            rows = Backend.objects.select_for_update().exclude(api_key_encrypted="").order_by("name")
            for backend_id, name, token in rows.values_list("id", "name", "api_key_encrypted"):
                try:
                    if _readable_by(newest, token):
                        current += 1
                    fresh = crypto.rotate(token)
                except InvalidToken:
                    unreadable.append(name)
                    continue
                Backend.objects.filter(pk=backend_id).update(api_key_encrypted=fresh)
                rotated += 1
            if unreadable:
                # Raising inside the transaction rolls back the rows already rewritten.
                raise CommandError(
                    f"cannot decrypt the stored key of {', '.join(unreadable)} with any key in "
                    "ELDRIC_ENCRYPTION_KEY; nothing was changed. Add the key they were encrypted "
                    "under after the new one and run again."
                )
        crypto.reset_cache()
        self.stdout.write(
            f"Re-encrypted {rotated} upstream key{'s' if rotated != 1 else ''} under {where} "
            f"({current} already used it, {rotated - current} rotated from an older key)."
        )


def _new_key() -> str:
    return Fernet.generate_key().decode()


def _readable_by(fernet: Fernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode())
    except InvalidToken:
        return False
    return True
