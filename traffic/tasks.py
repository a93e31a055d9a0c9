"""Celery entry points: thin wrappers around services."""

from celery import shared_task


@shared_task
def traffic_retention_task() -> dict[str, int]:
    from traffic.services import traffic_retention_enforce

    return traffic_retention_enforce()
