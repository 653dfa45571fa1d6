"""Helpers of the end-to-end tests (integration, hostile): create webhooks
through the API, publish through the publishing service, read rows back."""

from typing import Any

from delivery.models import Attempt, Delivery
from events.services import publish_event
from subscriptions.models import Client, Subscription
from tests.support.waiting import wait_until


def create_webhook(api: Any, url: str, **body: Any) -> dict[str, Any]:
    """POST /api/v1/webhooks; returns the webhook object (with its secret)."""
    payload = {"event_groups": ["DELIVERED"], "configuration": {"url": url}, **body}
    response = api.post("/api/v1/webhooks", payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def publish(tenant: Client, type: str = "DELIVERED", **fields: Any) -> tuple[str, int]:
    """Publish a tenant event as the platform; returns (event id, deliveries)."""
    publisher, _ = Client.objects.get_or_create(name="platform")
    result = publish_event(
        publisher=publisher,
        type=type,
        payload=fields.pop("payload", {"n": 1}),
        tenant=tenant.name,
        **fields,
    )
    return str(result.event.id), result.deliveries


def delivery_of(event_id: str, webhook_id: str) -> Delivery:
    return Delivery.objects.get(event_id=event_id, subscription_id=webhook_id)


def attempts_of(delivery: Delivery) -> list[Attempt]:
    return list(Attempt.objects.filter(delivery=delivery).order_by("number", "id"))


def subscription(webhook_id: str) -> Subscription:
    return Subscription.objects.get(pk=webhook_id)


def wait_for_delivery(
    event_id: str, webhook_id: str, *statuses: str, timeout: float = 15.0
) -> Delivery:
    """Poll until the delivery of event to webhook is in one of `statuses`."""

    def probe() -> Delivery | None:
        delivery = Delivery.objects.filter(
            event_id=event_id, subscription_id=webhook_id
        ).first()
        return delivery if delivery and delivery.status in statuses else None

    return wait_until(
        probe, timeout=timeout, message=f"delivery of {event_id} to be {statuses}"
    )
