"""Writes: stored responses in batches, and their retention."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from responses_store.models import StoredResponse

logger = logging.getLogger(__name__)


def stored_responses_write(*, rows: list[dict]) -> int:
    """Insert a batch; an id already stored (a retried batch) is skipped, not an error."""
    objects = [StoredResponse(**row) for row in rows]
    with transaction.atomic():
        StoredResponse.objects.bulk_create(objects, ignore_conflicts=True)
    return len(objects)


def stored_responses_retention_enforce(*, now=None) -> int:
    """Delete stored responses older than ``ELDRIC_RESPONSES_STORE_DAYS`` days (all of them
    when the store is off: nothing may be kept longer than the operator allows)."""
    now = now or timezone.now()
    days = max(0, settings.ELDRIC_RESPONSES_STORE_DAYS)
    chunk = max(1, settings.ELDRIC_RESPONSES_RETENTION_CHUNK)
    stale = StoredResponse.objects.filter(created_at__lt=now - timedelta(days=days))
    deleted = 0
    while True:
        ids = list(stale.values_list("pk", flat=True)[:chunk])
        if not ids:
            break
        with transaction.atomic():
            deleted += StoredResponse.objects.filter(pk__in=ids).delete()[0]
    if deleted:
        logger.info("responses store: deleted %d responses past the retention of %d days", deleted, days)
    return deleted
