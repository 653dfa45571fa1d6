"""A webhook's health in the worker: its failure counter, and the pause at
WEBHOOK_PAUSE_AFTER_FAILURES, which goes through the one writer of
Subscription.status (subscriptions.services.pause_subscription)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.pipeline.engine import deliver_due_batch
from subscriptions import services as subscription_services
from tests.support.receiver import Reply
from tests.support.rows import make_delivery, reload

pytestmark = pytest.mark.django_db


def test_the_pause_at_the_threshold_goes_through_pause_subscription(
    subscribe, receiver, kicked, settings, monkeypatch
):
    settings.WEBHOOK_PAUSE_AFTER_FAILURES = 2
    receiver.script("/hooks", Reply(500))
    subscription = subscribe(receiver.url("/hooks"), consecutive_failures=1)
    make_delivery(subscription)
    calls = []
    real = subscription_services.pause_subscription

    def spy(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(subscription_services, "pause_subscription", spy)

    deliver_due_batch(limit=10)

    assert [c["subscription"].pk for c in calls] == [subscription.pk]
    assert calls[0]["reason"] == "2 consecutive failed attempts; last: HTTP 500"
    subscription.refresh_from_db()
    assert subscription.status == "paused"


def test_the_worker_and_an_operator_pause_alike(subscribe, receiver, kicked, settings):
    settings.WEBHOOK_PAUSE_AFTER_FAILURES = 1
    receiver.script("/failing", Reply(503))
    by_worker = subscribe(receiver.url("/failing"))
    by_operator = subscribe(receiver.url("/other"))
    waiting = [
        make_delivery(sub, next_attempt_at=timezone.now() + timedelta(hours=1))
        for sub in (by_worker, by_operator)
    ]
    make_delivery(by_worker)

    deliver_due_batch(limit=10)
    subscription_services.pause_subscription(subscription=by_operator, reason="ops")

    for sub, reason in (
        (by_worker, "1 consecutive failed attempts; last: HTTP 503"),
        (by_operator, "ops"),
    ):
        sub.refresh_from_db()
        assert (sub.status, sub.paused_reason) == ("paused", reason)
        assert sub.paused_at is not None
    assert [reload(d).status for d in waiting] == ["held", "held"]


def test_a_lapsed_webhook_is_not_paused_by_the_worker(
    subscribe, receiver, kicked, settings
):
    # Past its expires_at but not yet swept by beat: the worker's pause used to
    # skip the expiry check that the operator's had; there is one check now.
    settings.WEBHOOK_PAUSE_AFTER_FAILURES = 1
    receiver.script("/hooks", Reply(503))
    subscription = subscribe(
        receiver.url("/hooks"), expires_at=timezone.now() - timedelta(seconds=1)
    )
    delivery = make_delivery(subscription)

    deliver_due_batch(limit=10)

    subscription.refresh_from_db()
    assert subscription.status == "active"
    assert subscription.paused_at is None
    assert subscription.consecutive_failures == 1
    assert reload(delivery).status == "pending"  # retried on the backoff table
