"""Fan-out: one publish reaching 10,000 subscriptions."""

import json
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery.models import Delivery
from events.models import Event
from events.selectors import matching_subscriptions
from events.services import publish_event
from subscriptions.models import Subscription, SubscriptionFilter
from tests.support.factories import ClientFactory

FAN_OUT = 10_000


def _create_subscriptions(client, count: int) -> None:
    created_at = timezone.now() - timedelta(minutes=1)
    subscriptions = Subscription.objects.bulk_create(
        Subscription(
            client=client,
            url=f"http://127.0.0.1:9/hooks/{n}",
            event_groups=["DELIVERED"],
            fingerprint=f"{n:064d}",
            secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            # Every tenth is paused: its delivery is created held.
            status="paused" if n % 10 == 0 else "active",
            created_at=created_at,
            expires_at=created_at + settings.WEBHOOK_SUBSCRIPTION_TTL,
        )
        for n in range(count)
    )
    SubscriptionFilter.objects.bulk_create(
        SubscriptionFilter(subscription=s, event_type="DELIVERED")
        for s in subscriptions
    )


def test_one_publish_creates_a_delivery_for_each_of_10000_subscriptions(
    platform, capsys, woken, django_capture_on_commit_callbacks
):
    acme = ClientFactory(name="acme")
    _create_subscriptions(acme, FAN_OUT)
    # Noise the routing must skip.
    _create_subscriptions(ClientFactory(name="globex"), 100)

    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        started = time.perf_counter()
        result = publish_event(
            publisher=platform, type="DELIVERED", tenant="acme", payload={"n": 1}
        )
        elapsed = time.perf_counter() - started

    assert result.deliveries == FAN_OUT
    deliveries = Delivery.objects.filter(event=result.event)
    assert deliveries.count() == FAN_OUT
    assert deliveries.filter(client=acme).count() == FAN_OUT
    assert deliveries.filter(status=Delivery.Status.HELD).count() == FAN_OUT // 10
    assert woken == [FAN_OUT - FAN_OUT // 10]
    # Bulk inserts, not a round trip per delivery.
    assert len(queries) < 50, [q["sql"][:120] for q in queries]
    with capsys.disabled():
        print(
            f"\n  fan-out: published to {FAN_OUT} subscriptions in "
            f"{elapsed * 1000:.0f} ms ({len(queries)} queries)"
        )


def _rows_removed_by_join_filters(plan: dict) -> int:
    removed = plan.get("Rows Removed by Join Filter", 0)
    return removed + sum(
        _rows_removed_by_join_filters(child) for child in plan.get("Plans", [])
    )


def test_routing_never_compares_every_filter_with_every_subscription(platform):
    """Right after a burst of new subscriptions the tables have no statistics;
    the routing query must stay linear anyway (EXPLAIN ANALYZE on PostgreSQL)."""
    acme = ClientFactory(name="acme")
    _create_subscriptions(acme, 2000)
    event = Event.objects.create(
        publisher=platform, tenant=acme, type="DELIVERED", created_at=timezone.now()
    )
    query = matching_subscriptions(event).values_list("id", "client_id", "status")

    plan = json.loads(query.explain(format="json", analyze=True))[0]["Plan"]

    assert plan["Actual Rows"] == 2000
    assert _rows_removed_by_join_filters(plan) < 2000
