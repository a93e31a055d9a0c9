"""Celery entry points: thin wrappers around services."""

from celery import shared_task


@shared_task
def stored_responses_retention_task() -> int:
    from responses_store.services import stored_responses_retention_enforce

    return stored_responses_retention_enforce()
