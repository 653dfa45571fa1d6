"""Delivery services. Other apps call these; they never touch delivery models."""

from uuid import UUID

from django.utils import timezone

from delivery.models import Delivery

_UNFINISHED = [Delivery.Status.PENDING, Delivery.Status.HELD]


def release_held_deliveries(*, subscription_id: UUID) -> int:
    """Make a resumed subscription's held deliveries due now; expire those past TTL.

    Returns how many were released. Call inside the resume transaction.
    """
    now = timezone.now()
    held = Delivery.objects.filter(
        subscription_id=subscription_id, status=Delivery.Status.HELD
    )
    held.filter(expires_at__lte=now).update(
        status=Delivery.Status.EXPIRED, next_attempt_at=None
    )
    return held.update(status=Delivery.Status.PENDING, next_attempt_at=now)


def cancel_unfinished_deliveries(*, subscription_id: UUID) -> int:
    """Cancel a subscription's pending and held deliveries (before it is deleted)."""
    return Delivery.objects.filter(
        subscription_id=subscription_id, status__in=_UNFINISHED
    ).update(status=Delivery.Status.CANCELLED, next_attempt_at=None, lease_token=None)
