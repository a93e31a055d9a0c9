"""Celery entry points: thin wrappers that look up ids and call services."""

from celery import shared_task


@shared_task
def backends_check_due_task() -> int:
    from backends.services import backends_claim_due

    due = backends_claim_due()
    for backend_id in due:
        backend_check_health_task.delay(backend_id)
    return len(due)


@shared_task
def backend_check_health_task(backend_id: int) -> str | None:
    from backends.services import backend_check_health

    result = backend_check_health(backend_id=backend_id)
    return result.status if result else None


@shared_task
def backends_discover_all_task() -> int:
    """Every instance's beat may send this: the claim makes each backend's discovery run once
    per interval across the deployment."""
    from django.conf import settings

    from backends.services import backends_claim_discovery

    ids = backends_claim_discovery(interval=settings.ELDRIC_DISCOVERY_INTERVAL_SECONDS)
    for backend_id in ids:
        backend_discover_task.delay(backend_id)
    return len(ids)


@shared_task
def backend_discover_task(backend_id: int) -> str | None:
    from backends.services import backend_discover

    result = backend_discover(backend_id=backend_id)
    return result.status if result else None
