"""Helpers of the API tests: the create body of docs/api.md, the error envelope,
row counts."""

import copy
import json

from subscriptions.models import Subscription, SubscriptionFilter

HEADER_VALUE = "12345-67890-header-value"
CLIENT_SECRET = "s3cr3t-oauth-client-secret"

WEBHOOK_BODY = {
    "trackingId": "TESTPACKAGEDELIVERED",
    "event_groups": ["DELIVERED", "IN_TRANSIT", "STATUS_CHANGED:RELEASED"],
    "configuration": {
        "url": "https://example.com/hooks",
        "content_type": "application/json",
        "headers": [{"key": "x-protection-header", "value": HEADER_VALUE}],
        "oauth2": {
            "token_url": "https://idp.example.com/oauth/token",
            "client_id": "abc",
            "client_secret": CLIENT_SECRET,
            "audience": "https://example.com",
            "scope": "webhooks",
        },
    },
}


def new_body() -> dict:
    """A fresh copy of docs/api.md's create body (with recognisable secrets)."""
    return copy.deepcopy(WEBHOOK_BODY)


def assert_envelope(response, status: int) -> dict:
    """The error envelope, and nothing else at the top level."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    payload = json.loads(response.content)
    assert set(payload) <= {"uuid", "status", "reason", "errors"}
    assert isinstance(payload["uuid"], str) and payload["uuid"]
    assert payload["status"] == str(status)
    assert isinstance(payload["reason"], str) and payload["reason"]
    if "errors" in payload:
        assert payload["errors"]
        for path, messages in payload["errors"].items():
            assert isinstance(path, str)
            assert messages and all(isinstance(m, str) for m in messages)
    return payload


def row_counts() -> tuple[int, int]:
    return Subscription.objects.count(), SubscriptionFilter.objects.count()


def create(api, body: dict, path: str = "/api/v1/webhooks"):
    return api.post(path, body, format="json")


def make_delivery(subscription, status: str, **fields):
    """A delivery of a fresh event to the subscription, in the given status."""
    from datetime import timedelta

    from django.utils import timezone

    from delivery.models import Delivery
    from events.models import Event
    from subscriptions.models import Client

    publisher, _ = Client.objects.get_or_create(name="platform")
    event = Event.objects.create(
        publisher=publisher, tenant=subscription.client, type="DELIVERED"
    )
    now = timezone.now()
    values = {
        "event": event,
        "subscription": subscription,
        "client": subscription.client,
        "status": status,
        "next_attempt_at": now + timedelta(minutes=5) if status == "pending" else None,
        "expires_at": now + timedelta(hours=1),
    }
    values.update(fields)
    return Delivery.objects.create(**values)
