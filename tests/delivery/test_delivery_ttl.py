"""Every place that sets a delivery's expires_at uses its webhook's own
delivery_ttl (WEBHOOK_DELIVERY_TTL where it has none): publishing (the one
INSERT … SELECT and the portable path), a test delivery, a retry, a bulk
retry and a replay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery import services
from delivery.models import Delivery
from delivery.ops.replay import replay_deliveries
from events.models import Event
from subscriptions import services as subscription_services
from subscriptions.models import Client, Subscription
from tests.support.flows import publish
from tests.support.rows import make_delivery, reload

pytestmark = pytest.mark.django_db

DEFAULT = timedelta(hours=24)
LONG = timedelta(days=5)


@pytest.fixture
def tenant() -> Client:
    return Client.objects.create(name="acme")


def webhook(tenant: Client, url: str, ttl: timedelta | None = None, **config):
    return subscription_services.create_subscription(
        client=tenant,
        config=subscription_services.WebhookConfig(
            url=url, event_groups=["DELIVERED"], delivery_ttl=ttl, **config
        ),
    )


def test_a_published_event_expires_per_webhook(tenant, sql_path, kicked):
    own = webhook(tenant, "http://a.example/hooks", LONG)
    default = webhook(tenant, "http://b.example/hooks")
    capillary = webhook(tenant, "http://c.example/hooks", profile="capillary")

    event_id, count = publish(tenant)

    assert count == 3
    expiry = {
        d.subscription_id: d.expires_at - d.event.created_at
        for d in Delivery.objects.filter(event_id=event_id).select_related("event")
    }
    assert expiry == {own.id: LONG, default.id: DEFAULT, capillary.id: timedelta(7)}


def test_create_deliveries_uses_each_webhooks_ttl(tenant, sql_path):
    own = webhook(tenant, "http://a.example/hooks", LONG)
    default = webhook(tenant, "http://b.example/hooks")
    event = Event.objects.create(publisher=tenant, tenant=tenant, type="DELIVERED")

    created = services.create_deliveries(
        event=event, subscriptions=Subscription.objects.all()
    )

    assert created.total == 2
    expiry = {
        d.subscription_id: d.expires_at - event.created_at
        for d in Delivery.objects.filter(event=event)
    }
    assert expiry == {own.id: LONG, default.id: DEFAULT}


def test_a_test_delivery_gets_the_webhooks_ttl(tenant, kicked):
    subscription = webhook(tenant, "http://a.example/hooks", LONG)

    before = timezone.now()
    delivery = services.send_test_delivery(subscription=subscription)

    assert delivery.expires_at - before >= LONG
    assert delivery.expires_at - before < LONG + timedelta(minutes=1)


def test_a_retry_gets_a_fresh_ttl_of_the_webhooks_length(tenant, kicked):
    subscription = webhook(tenant, "http://a.example/hooks", LONG)
    delivery = make_delivery(subscription, status="failed")

    before = timezone.now()
    retried = services.retry_delivery(delivery_id=delivery.id)

    assert LONG <= retried.expires_at - before < LONG + timedelta(minutes=1)


def test_a_bulk_retry_gives_each_delivery_its_own_webhooks_ttl(tenant, kicked):
    own = make_delivery(webhook(tenant, "http://a.example/h", LONG), status="failed")
    default = make_delivery(webhook(tenant, "http://b.example/h"), status="expired")

    before = timezone.now()
    result = services.retry_deliveries(client_id=tenant.id, ids=[own.id, default.id])

    assert result.retried == 2
    assert LONG <= reload(own).expires_at - before < LONG + timedelta(minutes=1)
    assert DEFAULT <= reload(default).expires_at - before < DEFAULT + timedelta(1)


def test_a_replay_gives_the_new_delivery_the_webhooks_ttl(tenant, kicked):
    original = make_delivery(
        webhook(tenant, "http://a.example/h", LONG), status="failed"
    )

    before = timezone.now()
    result = replay_deliveries(deliveries=Delivery.objects.filter(pk=original.pk))

    assert result.created == 1
    new = Delivery.objects.exclude(pk=original.pk).get()
    assert LONG <= new.expires_at - before < LONG + timedelta(minutes=1)
