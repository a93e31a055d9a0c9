"""Celery entry points: thin wrappers around services."""

from celery import shared_task


@shared_task
def usage_retention_task() -> dict[str, int]:
    from usage.services import usage_retention_enforce

    return usage_retention_enforce()
