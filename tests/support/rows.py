"""Rows written directly (bypassing the API): events and deliveries for the
delivery tests, and small helpers to read them back."""

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from delivery.models import Delivery
from events.models import Event
from subscriptions.models import Client, Subscription

# The signing secret of the subscriptions the `subscribe` fixture writes.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def earlier() -> datetime:
    """A minute ago: a `created_at` before anything the test publishes."""
    return timezone.now() - timedelta(minutes=1)


def make_event(client: Client, **fields: Any) -> Event:
    now = timezone.now()
    fields.setdefault("type", "DELIVERED")
    fields.setdefault("payload", {"status": "delivered"})
    return Event.objects.create(
        publisher=client, tenant=client, created_at=now, occurred_at=now, **fields
    )


def make_delivery(subscription: Subscription, **fields: Any) -> Delivery:
    """A pending delivery of a fresh event, due now unless told otherwise."""
    now = timezone.now()
    event = fields.pop("event", None) or make_event(subscription.client)
    fields.setdefault("next_attempt_at", now)
    fields.setdefault("expires_at", now + timedelta(hours=24))
    return Delivery.objects.create(
        event=event, subscription=subscription, client=subscription.client, **fields
    )


def reload(delivery: Delivery) -> Delivery:
    return Delivery.objects.get(pk=delivery.pk)
