"""Celery tasks: thin shells around the pipeline and the services."""

from celery import shared_task
from django.conf import settings

from delivery import retention, services
from delivery.pipeline import engine, wakeups
from subscriptions import services as subscription_services


@shared_task(ignore_result=True)
def deliver_due() -> None:
    """Claim and deliver one batch of due deliveries."""
    engine.deliver_due_batch(limit=settings.WEBHOOK_BATCH_SIZE)


@shared_task(ignore_result=True)
def dispatch_due() -> None:
    """Beat, every WEBHOOK_DISPATCH_INTERVAL: wake workers for due rows."""
    wakeups.dispatch_due_deliveries()


@shared_task(ignore_result=True)
def expire_deliveries() -> None:
    """Beat: deliveries and subscriptions past their expiry become expired."""
    services.expire_overdue_deliveries()
    subscription_services.expire_lapsed_subscriptions()


@shared_task(ignore_result=True)
def prune_old_rows() -> None:
    """Beat, every WEBHOOK_PRUNE_INTERVAL: events, deliveries and attempts
    older than WEBHOOK_RETENTION are deleted, for at most half the interval
    (what is left waits for the next run)."""
    retention.prune(time_budget=settings.WEBHOOK_PRUNE_INTERVAL / 2)
