"""Operational notifications: `webhook.paused`, `webhook.disabled`,
`webhook.expired`, `webhook.recovered` and `delivery.exhausted`, as signed
Standard Webhooks POSTs to the operator's WEBHOOK_OPERATIONAL_URL (kind
`operator`) and to the client's notification_url (kind `notice`).

Each is an Event and a Delivery, written in the transaction that makes the
transition (so once per transition, and never for one that rolled back), and
sent by the ordinary pipeline: claimed, vetted by the SSRF guard, retried on
the backoff table until WEBHOOK_DELIVERY_TTL, every attempt logged. They have
no webhook (subscription NULL): nothing about them counts towards a webhook's
failures, its breaker or its status, so a notification that fails never
causes another one (recording only notifies for deliveries of kind `event`).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from delivery.models import Delivery
from delivery.pipeline import wakeups
from events.models import Event
from subscriptions.models import Client

PAUSED = "webhook.paused"
DISABLED = "webhook.disabled"
EXPIRED = "webhook.expired"
RECOVERED = "webhook.recovered"
EXHAUSTED = "delivery.exhausted"
TYPES = (PAUSED, DISABLED, EXPIRED, RECOVERED, EXHAUSTED)


@dataclass(frozen=True)
class Notice:
    """What happened to one webhook (or one of its deliveries)."""

    type: str
    webhook_id: UUID
    client_id: int
    reason: str
    last_status_code: int | None = None
    delivery_id: UUID | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "webhook_id": str(self.webhook_id),
            "reason": self.reason,
            "last_status_code": self.last_status_code,
            # The delivery log, in the API (relative to the service's address).
            "deliveries_url": f"/api/v1/webhooks/{self.webhook_id}/deliveries",
        }
        if self.delivery_id is not None:
            data["delivery_id"] = str(self.delivery_id)
            data["delivery_url"] = f"/api/v1/deliveries/{self.delivery_id}"
        return data


def notify(notices: Iterable[Notice], *, now: datetime | None = None) -> int:
    """Write the notifications of these transitions (to the operator and to
    each client with a notification_url); workers are woken on commit.
    Returns how many deliveries were written."""
    notices = list(notices)
    if not notices:
        return 0
    now = now or timezone.now()
    operator = bool(settings.WEBHOOK_OPERATIONAL_URL)
    with_url = set(
        Client.objects.filter(id__in={n.client_id for n in notices})
        .exclude(notification_url="")
        .values_list("id", flat=True)
    )
    events, deliveries = [], []
    for notice in notices:
        kinds = [Delivery.Kind.OPERATOR] if operator else []
        if notice.client_id in with_url:
            kinds.append(Delivery.Kind.NOTICE)
        if not kinds:
            continue
        event = Event(
            publisher_id=notice.client_id,
            tenant_id=notice.client_id,
            type=notice.type,
            resource_id=str(notice.webhook_id),
            payload=notice.payload(),
            occurred_at=now,
            created_at=now,
        )
        events.append(event)
        deliveries += [
            Delivery(
                event=event,
                client_id=notice.client_id,
                kind=kind,
                next_attempt_at=now,
                expires_at=now + settings.WEBHOOK_DELIVERY_TTL,
            )
            for kind in kinds
        ]
    if not deliveries:
        return 0
    Event.objects.bulk_create(events)
    Delivery.objects.bulk_create(deliveries)
    count = len(deliveries)
    transaction.on_commit(lambda: wakeups.wake(due_count=count))
    return count


@dataclass(frozen=True)
class Target:
    url: str
    secret: str


def target_of(delivery: Delivery) -> Target | None:
    """Where a notification goes now (None: nowhere any more, e.g. the client
    removed its notification_url since)."""
    if delivery.kind == Delivery.Kind.OPERATOR:
        url, secret = (
            settings.WEBHOOK_OPERATIONAL_URL,
            settings.WEBHOOK_OPERATIONAL_SECRET,
        )
    else:
        client = Client.objects.only("notification_url", "notification_secret").get(
            pk=delivery.client_id
        )
        url, secret = client.notification_url, client.notification_secret
    return Target(url, secret) if url and secret else None
