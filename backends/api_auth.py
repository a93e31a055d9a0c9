"""Who may use the management API (/api/v1/*, /api/schema/).

Two ways in: ``Authorization: Bearer <admin token>`` for scripts, or a logged-in staff
session (with CSRF on writes) for the browser. Anything else answers 401.
"""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from backends.selectors import admin_token_matches

TOKEN_ACTOR = "admin-token"


@dataclass(frozen=True)
class AdminTokenPrincipal:
    """The caller holding the admin token. Not a Django user: the token belongs to nobody."""

    username: str = TOKEN_ACTOR
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = True

    def get_username(self) -> str:
        return self.username


class AdminTokenAuthentication(authentication.BaseAuthentication):
    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None  # maybe a session; the permission check answers 401 if not
        scheme, _, token = header.decode("latin-1").partition(" ")
        if scheme.lower() != self.keyword or not token.strip():
            raise exceptions.AuthenticationFailed("Send the admin token as 'Authorization: Bearer <token>'.")
        if not admin_token_matches(token.strip()):
            raise exceptions.AuthenticationFailed("Invalid admin token.")
        return AdminTokenPrincipal(), None

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) to unauthenticated requests.
        return 'Bearer realm="eldric-admin"'


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """A Django session, counted only for active staff users; DRF enforces CSRF on writes."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None or not result[0].is_staff:
            return None
        return result


class IsAdmin(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user is not None and user.is_authenticated and user.is_staff)


def actor_for(request) -> str:
    """How the audit log names the caller."""
    return request.user.get_username() if request.user is not None else "anonymous"


class AdminTokenScheme(OpenApiAuthenticationExtension):
    target_class = "backends.api_auth.AdminTokenAuthentication"
    name = "adminToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "The admin token (ELDRIC_ADMIN_TOKEN)."}


class StaffSessionScheme(OpenApiAuthenticationExtension):
    target_class = "backends.api_auth.StaffSessionAuthentication"
    name = "staffSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}


def rotate_command() -> str:
    """The exact command that rotates the admin token of this installation."""
    import shlex
    import sys

    from django.conf import settings

    prefix = ""
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        prefix = f"ELDRIC_DATA_DIR={shlex.quote(str(settings.DATA_DIR))} "
    return f"{prefix}{shlex.quote(sys.executable)} -m django rotate_admin_token --settings=eldric_cloud.settings"


def admin_token_banner(token: str) -> str:
    return (
        "\n"
        "Admin token for the management API (/api/v1, /api/schema/), shown only this once:\n"
        "\n"
        f"    {token}\n"
        "\n"
        "Send it as 'Authorization: Bearer <token>'. Only its hash is stored. To replace it (the old one\n"
        f"stops working), run:\n    {rotate_command()}\n"
        "or set ELDRIC_ADMIN_TOKEN, which takes precedence.\n"
    )
