from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from delivery import kicks
from delivery.models import Delivery
from events.models import Event
from subscriptions.models import Client, Subscription
from tests.factories import ClientFactory, SubscriptionFactory
from tests.integration.fixtures import receiver  # noqa: F401 - a fixture

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(autouse=True)
def _deterministic_policy(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (timedelta(seconds=10), timedelta(seconds=30))
    settings.WEBHOOK_RETRY_JITTER = 0.0
    settings.WEBHOOK_DELIVERY_TTL = timedelta(hours=24)
    settings.WEBHOOK_PAUSE_AFTER_FAILURES = 10
    settings.WEBHOOK_BREAKER_THRESHOLD = 1000
    settings.WEBHOOK_TIMEOUT = timedelta(seconds=2)
    settings.WEBHOOK_CONNECT_TIMEOUT = timedelta(seconds=1)


@pytest.fixture
def kicked(monkeypatch) -> list[dict[str, Any]]:
    """Wake-ups the code under test sends (instead of reaching the broker)."""
    calls: list[dict[str, Any]] = []

    def fake(*, count: int = 0, countdowns=()) -> int:
        calls.append({"count": count, "countdowns": list(countdowns)})
        return count + len(calls[-1]["countdowns"])

    monkeypatch.setattr(kicks, "send_kicks", fake)
    return calls


@pytest.fixture(params=["postgresql", "portable"])
def sql_path(request, monkeypatch) -> str:
    """Run a test through the PostgreSQL statements and the portable (SQLite)
    ones; both run on the test database here."""
    if request.param == "portable":
        monkeypatch.setattr(connection, "vendor", "sqlite")
    return request.param


@pytest.fixture
def subscribe(db) -> Callable[..., Subscription]:
    """subscribe(url, **fields) -> a subscription of client `acme`."""

    def make(url: str, **fields: Any) -> Subscription:
        fields.setdefault("client", ClientFactory(name="acme"))
        fields.setdefault("secret", SECRET)
        return SubscriptionFactory(url=url, **fields)

    return make


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
