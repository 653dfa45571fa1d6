"""Celery tasks: thin shells around delivery services (enqueue on commit)."""

from celery import shared_task
from django.conf import settings

from delivery import services


@shared_task(ignore_result=True)
def deliver_due() -> None:
    """Claim and deliver one batch of due deliveries."""
    services.deliver_due_batch(limit=settings.WEBHOOK_BATCH_SIZE)


@shared_task(ignore_result=True)
def dispatch_due() -> None:
    """Beat, every WEBHOOK_DISPATCH_INTERVAL: wake workers for due rows."""
    services.dispatch_due_deliveries()


@shared_task(ignore_result=True)
def expire_deliveries() -> None:
    """Beat: deliveries and subscriptions past their expiry become expired."""
    services.expire_overdue_deliveries()
    services.expire_overdue_subscriptions()


@shared_task(ignore_result=True)
def prune_attempts() -> None:
    """Beat: attempts older than WEBHOOK_RETENTION_DAYS are deleted."""
    services.prune_old_attempts()
