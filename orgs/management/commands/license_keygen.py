"""``manage.py license_keygen --private-key PATH``: a new Ed25519 key pair for issuing licenses.

The private key is written with mode 0600 and never overwritten; the public key (base64) is
printed on stdout, for ELDRIC_LICENSE_PUBLIC_KEYS.
"""

import os

from django.core.management.base import BaseCommand, CommandError

from orgs.license_files import keypair_generate


class Command(BaseCommand):
    help = "Generate a license signing key pair: the private key to PATH (mode 0600), the public key on stdout."

    def add_arguments(self, parser):
        parser.add_argument("--private-key", required=True, metavar="PATH", help="where to write the private key")

    def handle(self, *args, private_key: str, **options):
        pem, public = keypair_generate()
        try:
            # O_EXCL: an existing key (which may have signed licenses in use) is never replaced.
            fd = os.open(private_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{private_key} already exists; refusing to overwrite a signing key") from None
        except OSError as exc:
            raise CommandError(f"cannot create {private_key}: {exc.strerror}") from None
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # whatever the umask
            handle.write(pem)
        self.stderr.write(
            f"Private key written to {private_key} (mode 0600). Keep it on the license server only.\n"
            "Public key (set it in ELDRIC_LICENSE_PUBLIC_KEYS on every instance):"
        )
        self.stdout.write(public)
