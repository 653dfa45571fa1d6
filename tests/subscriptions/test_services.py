from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Delivery
from subscriptions import selectors, services
from subscriptions.models import Subscription, SubscriptionFilter
from tests.support.api import make_delivery
from tests.support.factories import ClientFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def _config(**overrides) -> services.WebhookConfig:
    values = {"url": "https://example.com/hooks", "event_groups": ["DELIVERED"]}
    values.update(overrides)
    return services.WebhookConfig(**values)


def test_the_fingerprint_ignores_group_order_and_repeats():
    a = services.fingerprint(
        url="https://e.co", tracking_id="T", event_groups=["A", "B", "A"]
    )
    b = services.fingerprint(
        url="https://e.co", tracking_id="T", event_groups=["B", "A"]
    )

    assert a == b
    assert len(a) == 64


@pytest.mark.parametrize(
    "other",
    [
        {"url": "https://e.co/x", "tracking_id": "T", "event_groups": ["A", "B"]},
        {"url": "https://e.co", "tracking_id": "U", "event_groups": ["A", "B"]},
        {"url": "https://e.co", "tracking_id": None, "event_groups": ["A", "B"]},
        {"url": "https://e.co", "tracking_id": "T", "event_groups": ["A"]},
    ],
)
def test_the_fingerprint_differs_by_url_tracking_id_and_groups(other):
    base = services.fingerprint(
        url="https://e.co", tracking_id="T", event_groups=["A", "B"]
    )

    assert services.fingerprint(**other) != base


def test_create_subscription_writes_the_row_and_its_filters():
    client = ClientFactory()

    sub = services.create_subscription(
        client=client,
        config=_config(event_groups=["DELIVERED", "STATUS_CHANGED:RELEASED"]),
        tracking_id="T1",
    )

    sub = Subscription.objects.get(pk=sub.pk)
    assert sub.secret.startswith("whsec_")
    assert sub.status == "active"
    assert set(SubscriptionFilter.objects.values_list("event_type", "subtype")) == {
        ("DELIVERED", ""),
        ("STATUS_CHANGED", "RELEASED"),
    }


def test_a_duplicate_raises_and_writes_nothing():
    client = ClientFactory()
    services.create_subscription(client=client, config=_config(), tracking_id="T")

    with pytest.raises(services.DuplicateSubscription) as raised:
        services.create_subscriptions_batch(
            client=client, config=_config(), tracking_ids=["S", "T"]
        )

    assert raised.value.tracking_ids == ["T"]
    assert Subscription.objects.count() == 1


def test_the_unique_constraint_still_catches_a_duplicate_past_the_check(monkeypatch):
    client = ClientFactory()
    services.create_subscription(client=client, config=_config())
    monkeypatch.setattr(
        selectors,
        "live_duplicates",
        lambda **kwargs: Subscription.objects.none(),
    )

    # The recheck also sees nothing here, so the IntegrityError itself surfaces:
    # the constraint, not only the check, guards the rule.
    from django.db import IntegrityError

    with pytest.raises(IntegrityError):
        services.create_subscription(client=client, config=_config())


def test_pause_holds_pending_deliveries_and_resume_releases_them():
    sub = SubscriptionFactory()
    pending = make_delivery(sub, "pending")
    failed = make_delivery(sub, "failed")

    assert services.pause_subscription(subscription=sub, reason="operator") is True

    sub.refresh_from_db()
    pending.refresh_from_db()
    failed.refresh_from_db()
    assert (sub.status, sub.paused_reason) == ("paused", "operator")
    assert sub.paused_at is not None
    assert pending.status == Delivery.Status.HELD
    assert failed.status == Delivery.Status.FAILED

    services.resume_subscription(subscription=sub)

    pending.refresh_from_db()
    assert pending.status == Delivery.Status.PENDING


def test_pausing_twice_or_pausing_an_expired_subscription_changes_nothing():
    paused = SubscriptionFactory(status="paused", paused_reason="first")
    lapsed = SubscriptionFactory(expires_at=timezone.now() - timedelta(seconds=1))

    assert services.pause_subscription(subscription=paused, reason="second") is False
    assert services.pause_subscription(subscription=lapsed, reason="x") is False

    paused.refresh_from_db()
    lapsed.refresh_from_db()
    assert paused.paused_reason == "first"
    assert lapsed.status == "active"


def test_disable_holds_pending_deliveries_once_and_resume_releases_them():
    sub = SubscriptionFactory()
    pending = make_delivery(sub, "pending")

    assert services.disable_subscription(subscription=sub, reason="410") is True
    assert services.disable_subscription(subscription=sub, reason="again") is False
    assert services.pause_subscription(subscription=sub, reason="pause") is False

    sub.refresh_from_db()
    pending.refresh_from_db()
    assert (sub.status, sub.paused_reason) == ("disabled", "410")
    assert pending.status == Delivery.Status.HELD

    services.resume_subscription(subscription=sub)

    sub.refresh_from_db()
    pending.refresh_from_db()
    assert (sub.status, sub.paused_reason) == ("active", "")
    assert pending.status == Delivery.Status.PENDING


def test_resume_refuses_a_subscription_that_is_not_paused():
    with pytest.raises(services.SubscriptionNotPaused):
        services.resume_subscription(subscription=SubscriptionFactory())


def test_expire_lapsed_subscriptions_marks_only_the_lapsed_live_ones():
    now = timezone.now()
    lapsed = SubscriptionFactory(expires_at=now - timedelta(seconds=1))
    lapsed_paused = SubscriptionFactory(
        status="paused", expires_at=now - timedelta(seconds=1)
    )
    live = SubscriptionFactory()

    assert services.expire_lapsed_subscriptions() == 2
    assert services.expire_lapsed_subscriptions() == 0

    statuses = dict(Subscription.objects.values_list("pk", "status"))
    assert statuses == {
        lapsed.pk: "expired",
        lapsed_paused.pk: "expired",
        live.pk: "active",
    }


def test_delete_subscription_is_idempotent():
    sub = SubscriptionFactory()

    services.delete_subscription(subscription=sub)
    services.delete_subscription(subscription=sub)

    assert not Subscription.objects.exists()
