"""Rows for the admin tests: clients, webhooks carrying every kind of secret,
events, deliveries and attempts written directly."""

from datetime import timedelta

from django.utils import timezone

from delivery.models import Attempt, Delivery
from events.models import Event
from subscriptions.models import Client, Subscription, SubscriptionFilter
from tests.support.factories import ClientFactory, SubscriptionFactory

SIGNING_SECRET = "whsec_c2lnbmluZy1zZWNyZXQtb2YtdGhlLXRlc3Q="
PREVIOUS_SECRET = "whsec_cHJldmlvdXMtc2lnbmluZy1zZWNyZXQ="
HEADER_VALUE = "header-value-never-shown-4711"
CLIENT_SECRET = "oauth2-client-secret-never-shown-0815"
SECRETS = (SIGNING_SECRET, PREVIOUS_SECRET, HEADER_VALUE, CLIENT_SECRET)


def webhook(
    client: Client | str = "acme",
    url: str = "https://hooks.acme.example/in",
    *,
    groups: tuple[str, ...] = ("DELIVERED",),
    **fields: object,
) -> Subscription:
    """A webhook with a signing secret, a previous one, a header value and an
    OAuth2 client secret, listening to `groups`."""
    if isinstance(client, str):
        client = ClientFactory(name=client)
    fields.setdefault("secret", SIGNING_SECRET)
    fields.setdefault("previous_secret", PREVIOUS_SECRET)
    fields.setdefault("previous_secret_expires_at", timezone.now() + timedelta(hours=1))
    fields.setdefault("headers", [{"key": "x-api-token", "value": HEADER_VALUE}])
    fields.setdefault("oauth2_token_url", "https://idp.acme.example/token")
    fields.setdefault("oauth2_client_id", "acme-hooks")
    fields.setdefault("oauth2_client_secret", CLIENT_SECRET)
    subscription = SubscriptionFactory(
        client=client, url=url, event_groups=list(groups), **fields
    )
    for group in groups:
        event_type, _, subtype = group.partition(":")
        SubscriptionFilter.objects.create(
            subscription=subscription, event_type=event_type, subtype=subtype
        )
    return subscription


def event(tenant: Client, **fields: object) -> Event:
    publisher, _ = Client.objects.get_or_create(name="platform")
    fields.setdefault("type", "DELIVERED")
    return Event.objects.create(publisher=publisher, tenant=tenant, **fields)


def delivery(
    subscription: Subscription, status: str = "pending", **fields: object
) -> Delivery:
    """A delivery of a fresh event (or `event=`) to the subscription."""
    now = timezone.now()
    fields.setdefault("next_attempt_at", now if status == "pending" else None)
    fields.setdefault("expires_at", now + timedelta(hours=24))
    return Delivery.objects.create(
        event=fields.pop("event", None) or event(subscription.client),
        subscription=subscription,
        client=subscription.client,
        status=status,
        **fields,
    )


def attempt(delivery: Delivery, outcome: str, **fields: object) -> Attempt:
    """The delivery's next attempt, `fields` as recorded."""
    number = delivery.attempts.count() + 1
    fields.setdefault("at", timezone.now())
    made = Attempt.objects.create(
        delivery=delivery, number=number, outcome=outcome, **fields
    )
    Delivery.objects.filter(pk=delivery.pk).update(attempts_count=number)
    return made
