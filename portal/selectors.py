"""Named reads of the portal's pages, all scoped to one client."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from delivery import selectors as delivery_selectors
from delivery.models import Attempt, Delivery
from events.models import Event, EventType
from events.selectors import list_event_types
from subscriptions import selectors as subscription_selectors
from subscriptions.models import Client, Subscription
from subscriptions.serializers import WebhookSerializer
from webhooks_project.ids import parse_public_id

# The webhooks list shows the newest this many (the API lists the rest).
WEBHOOKS_SHOWN = 100
LAST_ATTEMPTS = 5
RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class WebhookRow:
    # The API's webhook object (header names only, never a secret).
    webhook: dict[str, Any]
    # Attempts made in the last 24 h (skipped ones, breaker open, not counted).
    attempts: int
    succeeded: int
    # Newest first, at most LAST_ATTEMPTS, from the last 24 h.
    last_attempts: list[Attempt]

    @property
    def success_rate(self) -> int | None:
        """Percent of the last 24 h's attempts that succeeded; None if none."""
        if not self.attempts:
            return None
        return round(100 * self.succeeded / self.attempts)


def represent(subscription: Subscription, **context: Any) -> dict[str, Any]:
    """The webhook as the API shows it; `include_secret` only right after
    creation (and never from a page that reads it again)."""
    return WebhookSerializer(subscription, context=context).data


def webhook_rows(*, client: Client) -> list[WebhookRow]:
    """The client's webhooks that are not expired, newest first, with their
    last 24 h of attempts summed up (three queries whatever the count)."""
    subscriptions = list(
        subscription_selectors.list_subscriptions(client=client, limit=WEBHOOKS_SHOWN)
    )
    ids = [s.pk for s in subscriptions]
    since = timezone.now() - RECENT
    recent = Attempt.objects.filter(
        delivery__subscription_id__in=ids, at__gte=since
    ).exclude(outcome=Attempt.Outcome.SKIPPED)
    totals = {
        row["delivery__subscription_id"]: row
        for row in recent.values("delivery__subscription_id").annotate(
            total=Count("id"), ok=Count("id", filter=Q(outcome=Attempt.Outcome.ACK))
        )
    }
    last: dict[UUID, list[Attempt]] = {}
    ranked = recent.annotate(
        webhook_id=F("delivery__subscription_id"),
        rank=Window(
            RowNumber(),
            partition_by=F("delivery__subscription_id"),
            order_by=[F("at").desc(), F("id").desc()],
        ),
    ).filter(rank__lte=LAST_ATTEMPTS)
    for attempt in ranked.order_by("-at", "-id"):
        last.setdefault(attempt.webhook_id, []).append(attempt)
    now = timezone.now()
    return [
        WebhookRow(
            webhook=represent(s, client_name=client.name, now=now),
            attempts=totals.get(s.pk, {}).get("total", 0),
            succeeded=totals.get(s.pk, {}).get("ok", 0),
            last_attempts=last.get(s.pk, []),
        )
        for s in subscriptions
    ]


DELIVERIES_PAGE = 20


@dataclass(frozen=True)
class DeliveryRow:
    delivery: Delivery
    event_type: str


def webhook_deliveries(
    *, subscription: Subscription, before: tuple[datetime, UUID] | None
) -> tuple[list[DeliveryRow], tuple[datetime, UUID] | None]:
    """A page of the webhook's deliveries with their attempts and event
    types, newest first, and the (created_at, id) the next page starts
    before (None at the end)."""
    rows = delivery_selectors.list_deliveries(
        subscription=subscription, limit=DELIVERIES_PAGE, before=before
    )
    page = rows[:DELIVERIES_PAGE]
    types = dict(
        Event.objects.filter(pk__in=[d.event_id for d in page]).values_list(
            "pk", "type"
        )
    )
    following = None
    if len(rows) > DELIVERIES_PAGE:
        following = (page[-1].created_at, page[-1].id)
    return [DeliveryRow(d, types.get(d.event_id, "")) for d in page], following


def own_webhook(*, client: Client, webhook_id: str) -> Subscription | None:
    """The client's webhook by its id as written in a URL; None when malformed,
    unknown or another client's (the same 404 page)."""
    parsed = parse_public_id(webhook_id)
    if parsed is None:
        return None
    return subscription_selectors.get_subscription(
        client=client, subscription_id=parsed
    )


def event_type_catalogue() -> list[EventType]:
    return list(list_event_types())


def webhook_choices(*, client: Client) -> list[tuple[str, str]]:
    """(id, url) of the client's webhooks that are not expired, for a form's select."""
    return [
        (str(s.pk), s.url + (f" ({s.tracking_id})" if s.tracking_id else ""))
        for s in subscription_selectors.list_subscriptions(
            client=client, limit=WEBHOOKS_SHOWN
        )
    ]
