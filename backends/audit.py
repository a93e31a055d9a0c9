"""The audit log: who changed which backend, when, how and from where (secrets masked)."""

from __future__ import annotations

from backends.models import AuditAction, AuditLog, Backend
from backends.selectors import headers_masked


def audit_state(backend: Backend | None) -> dict:
    """The audited view of a backend: secrets masked, plus the ciphertext to spot key changes."""
    if backend is None:
        return {}
    return {
        "type": backend.kind,
        "url": backend.url,
        "api_key": backend.api_key_hint,
        "priority": backend.priority,
        "enabled": backend.enabled,
        "headers": headers_masked(backend.headers),
        "source": backend.source,
        "instances": list(backend.instances or []),
        "responses_api": backend.responses_api,
        "_key": backend.api_key_encrypted,
    }


def audit_diff(before: dict, after: dict) -> dict:
    """``{field: [old, new]}`` for every field that differs; a replaced key shows as its masks."""
    changes = {}
    for name in sorted((before.keys() | after.keys()) - {"_key"}):
        old, new = before.get(name), after.get(name)
        key_replaced = name == "api_key" and before.get("_key") != after.get("_key")
        if key_replaced or old != new:
            changes[name] = [old, new]
    return changes


def _audit_action(before: dict, after: dict, changes: dict) -> str:
    if not before:
        return AuditAction.CREATE
    if not after:
        return AuditAction.DELETE
    if set(changes) == {"enabled"}:
        return AuditAction.ENABLE if after["enabled"] else AuditAction.DISABLE
    return AuditAction.UPDATE


def audit_record(
    *, actor: str, source: str, action: str, backend_name: str = "", changes: dict | None = None
) -> AuditLog:
    return AuditLog.objects.create(
        actor=actor[:150], source=source, action=action, backend_name=backend_name, changes=changes or {}
    )


def audit_backend_change(*, before: dict, backend: Backend | None, name: str, actor: str, source: str) -> dict:
    """Record what changed between ``before`` and the backend's current state; return the changes."""
    after = audit_state(backend)
    changes = audit_diff(before, after)
    if changes:
        audit_record(
            actor=actor, source=source, action=_audit_action(before, after, changes), backend_name=name, changes=changes
        )
    return changes
