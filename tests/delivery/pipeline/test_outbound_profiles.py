"""The request of each profile (docs/api.md, "Profiles"), built in-process.

The receiver-side checks use the standard library only (hmac, hashlib), as
seed 002 describes the raas signature, never our signing module.
"""

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from delivery.pipeline import outbound
from events.models import Event
from subscriptions.models import Client, Subscription
from tests.support.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 22, 10, 0, 5, tzinfo=UTC)
OCCURRED = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


@pytest.fixture
def event() -> Event:
    publisher, _ = Client.objects.get_or_create(name="platform")
    return Event.objects.create(
        publisher=publisher,
        idempotency_key="order-42",
        type="DELIVERED",
        resource_id="PARCEL-1",
        user_id="u-42",
        payload={"status": "delivered"},
        occurred_at=OCCURRED,
    )


def build(
    event: Event, profile: str, now: datetime = NOW, **fields
) -> tuple[dict, dict, bytes]:
    subscription = SubscriptionFactory(profile=profile, **fields)
    request = outbound.build_request(event=event, subscription=subscription, now=now)
    headers = {name.lower(): value for name, value in request.headers.items()}
    return json.loads(request.body), headers, request.body


def test_the_standard_profile_is_the_default_and_unchanged(event):
    assert SubscriptionFactory().profile == Subscription.Profile.STANDARD
    body, headers, _ = build(event, "standard")
    assert set(body) == {
        "id", "type", "subtype", "resource_id", "user_id", "resource_url",
        "subscription_id", "payload", "timestamp",
    }  # fmt: skip
    assert body["timestamp"] == "2026-11-22T10:00:00Z"
    assert "x-raas-webhook-signature" not in headers


def test_the_raas_request_is_signed_as_seed_002_describes(event):
    body, headers, raw = build(event, "raas")
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["x-raas-webhook-signature"] == expected
    assert headers["x-raas-event"] == "DELIVERED"
    assert set(body) == {
        "id", "event_name", "resource_id", "user_id", "subscription_id",
        "payload", "timestamp",
    }  # fmt: skip
    assert body["id"] == str(event.id)
    assert body["event_name"] == "DELIVERED"
    assert body["resource_id"] == "PARCEL-1"
    assert body["user_id"] == "u-42"
    assert body["payload"] == {"status": "delivered"}
    # "Timestamp when the webhook is posted": the attempt, not the event.
    assert body["timestamp"] == "2026-11-22T10:00:05Z"


def test_a_tampered_raas_body_fails_the_receivers_check(event):
    _, headers, raw = build(event, "raas")
    secret = b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    tampered = raw.replace(b"delivered", b"returned")
    digest = hmac.new(secret, tampered, hashlib.sha256).hexdigest()
    assert not hmac.compare_digest(digest, headers["x-raas-webhook-signature"])


def test_the_capillary_body_has_seed_001s_fields(event):
    body, headers, raw = build(event, "capillary")
    subscription = Subscription.objects.get()
    assert body == {
        "eventName": "DELIVERED",
        "eventId": str(event.id),
        "orgId": subscription.client_id,
        "refId": "PARCEL-1",
        "apiRequestId": "order-42",
        "createdAt": int(OCCURRED.timestamp() * 1000),
        "data": {"status": "delivered"},
    }
    assert "x-raas-webhook-signature" not in headers


@pytest.mark.parametrize("profile", ["raas", "capillary"])
def test_every_profile_also_carries_a_verifiable_standard_signature(event, profile):
    _, headers, raw = build(event, profile, now=timezone.now())
    verified = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").verify(raw, headers)
    assert verified


def test_custom_headers_cannot_replace_the_raas_signature(event):
    _, headers, raw = build(
        event,
        "raas",
        headers=[
            {"key": "X-Raas-Webhook-Signature", "value": "forged"},
            {"key": "x-api-key", "value": "k"},
        ],
    )
    assert headers["x-raas-webhook-signature"] != "forged"
    assert headers["x-api-key"] == "k"


def test_the_capillary_api_request_id_falls_back_to_the_event_id(event):
    event.idempotency_key = None
    event.save()
    body, _, _ = build(event, "capillary")
    assert body["apiRequestId"] == str(event.id)
