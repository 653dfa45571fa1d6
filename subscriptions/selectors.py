"""Named reads of the subscriptions app."""

from collections.abc import Collection
from datetime import datetime
from uuid import UUID

from django.db.models import Q, QuerySet
from django.utils import timezone

from events.models import EventType
from subscriptions.models import Client, Subscription

# Never needed to show a webhook (header names have their own column);
# skipping them also skips their decryption.
_WRITE_ONLY_FIELDS = ("secret", "previous_secret", "oauth2_client_secret", "headers")


def effective_status(subscription: Subscription, *, now: datetime) -> str:
    """The status a client sees: past its expiry a subscription reads as
    `expired` even before the beat sweep has marked the row."""
    if subscription.expires_at <= now:
        return Subscription.Status.EXPIRED
    return subscription.status


def _lapsed(now: datetime) -> Q:
    return Q(status=Subscription.Status.EXPIRED) | Q(expires_at__lte=now)


def list_subscriptions(
    *,
    client: Client,
    limit: int,
    status: str | None = None,
    before: tuple[datetime, UUID] | None = None,
) -> QuerySet[Subscription]:
    """The client's webhooks, newest first, at most `limit`, none of their
    secrets or header values loaded (nor decrypted).

    Without `status`: those not expired (by status or by time). With a
    status: those that read as that status (so `expired` lists the lapsed).
    `before` is the (created_at, id) of the last row of the previous page
    (index `subscription_client_created`).
    """
    now = timezone.now()
    subscriptions = Subscription.objects.filter(client=client).defer(
        *_WRITE_ONLY_FIELDS
    )
    if status == Subscription.Status.EXPIRED:
        subscriptions = subscriptions.filter(_lapsed(now))
    else:
        subscriptions = subscriptions.exclude(_lapsed(now))
        if status:
            subscriptions = subscriptions.filter(status=status)
    if before is not None:
        created_at, subscription_id = before
        subscriptions = subscriptions.filter(
            Q(created_at__lt=created_at)
            | Q(created_at=created_at, id__lt=subscription_id)
        )
    return subscriptions.order_by("-created_at", "-id")[:limit]


def count_live_subscriptions(*, client: Client, now: datetime) -> int:
    """The client's live (not expired, by status or by time) subscriptions:
    what WEBHOOK_MAX_WEBHOOKS_PER_CLIENT counts."""
    return Subscription.objects.filter(client=client).exclude(_lapsed(now)).count()


def get_subscription(*, client: Client, subscription_id: UUID) -> Subscription | None:
    """The client's subscription with that id, or None (also when another
    client's: callers answer 404 either way)."""
    return (
        Subscription.objects.select_related("client")
        .filter(client=client, pk=subscription_id)
        .first()
    )


def live_duplicates(
    *, client: Client, fingerprints: Collection[str], now: datetime
) -> QuerySet[Subscription]:
    """The client's live (active or paused, not lapsed) subscriptions with one
    of these fingerprints: what makes a create a 409."""
    return Subscription.objects.filter(
        client=client, fingerprint__in=list(fingerprints)
    ).exclude(_lapsed(now))


def event_type_catalogue() -> dict[str, frozenset[str]]:
    """Known event type name -> its subtypes, for validating event_groups."""
    return {
        name: frozenset(subtypes or [])
        for name, subtypes in EventType.objects.values_list("name", "subtypes")
    }
