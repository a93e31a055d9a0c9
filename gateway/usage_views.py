"""``GET /v1/usage``: a client key reads its own usage, its budget and what remains.

- A client key sees its own usage in its current budget period (UTC day or month), its
  budget and what remains of it, and its organisation's budget and spend.
- The master key sees the default organisation's usage as a whole.
- Without a key (an open gateway) the answer is 403: usage is not public.

The figures come from the usage records, so they lag the requests by up to
``ELDRIC_USAGE_FLUSH_SECONDS``. The query runs on a thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime
import logging

from backends.providers.base import OpenAIError
from gateway.views import read_only
from orgs.models import DEFAULT_ORGANISATION

logger = logging.getLogger(__name__)

NO_KEY = OpenAIError(
    403,
    "Reading usage needs a client key (or the master key): send 'Authorization: Bearer <key>'.",
    type="permission_error",
    code="usage_needs_key",
)
UNAVAILABLE = OpenAIError(503, "Usage is unavailable right now; retry later.", code="usage_unavailable")


def _report(principal, access, today: datetime.date, key_record=None) -> dict:
    """Runs on a thread: the ORM may not run on the event loop."""
    from django.db import connection

    from usage.selectors import usage_self_report

    organisation = principal.organisation or DEFAULT_ORGANISATION
    org_record = access.organisation(organisation)
    key_id = None
    if principal.kind == "client_key":
        # -1 matches no row: never another key's usage, nor the organisation's keyless usage.
        key_id = int(principal.key_id) if str(principal.key_id).isdigit() else -1
    try:
        return usage_self_report(
            organisation=organisation,
            key_id=key_id,
            key_limits=getattr(key_record, "limits", None),
            key_name=getattr(key_record, "name", principal.name),
            key_prefix=getattr(key_record, "prefix", ""),
            org_limits=getattr(org_record, "limits", None),
            today=today,
        )
    finally:
        connection.close()


async def usage_self(gw, ctx, scope, receive, out) -> None:
    allowed, key_record = await read_only(gw, ctx, scope, out)
    if not allowed:
        return
    if ctx.principal.kind not in ("client_key", "master"):
        await out.error(NO_KEY)
        return
    today = datetime.datetime.now(datetime.UTC).date()
    try:
        report = await asyncio.to_thread(_report, ctx.principal, gw.snapshots.access, today, key_record)
    except Exception:
        logger.exception("GET /v1/usage: could not read usage")
        await out.error(UNAVAILABLE)
        return
    await out.json(200, report)
