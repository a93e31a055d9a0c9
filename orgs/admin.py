"""The admin for organisations, licenses and keys; each part registers itself."""

from orgs import admin_keys, admin_licenses  # noqa: F401
