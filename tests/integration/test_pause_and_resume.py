"""Pausing after consecutive failures, holding while paused, releasing on
resume, and expiry of what stays held past its TTL."""

import time

import pytest

from delivery.models import Delivery
from subscriptions.models import Subscription
from tests.support.flows import (
    attempts_of,
    create_webhook,
    publish,
    wait_for_delivery,
)
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_paused_after_n_failures_held_while_paused_delivered_after_resume(
    stack_factory, receiver, api
):
    stack = stack_factory(WEBHOOK_PAUSE_AFTER_FAILURES="3")
    stack.start_worker()
    stack.start_beat()
    receiver.script("/flaky", Reply(503))
    webhook = create_webhook(api, receiver.url("/flaky"))
    first_id, _ = publish(api.client_obj)

    paused = wait_until(
        lambda: Subscription.objects.filter(pk=webhook["id"], status="paused").first(),
        message="the webhook to be paused",
    )
    assert paused.paused_reason == "3 consecutive failed attempts; last: HTTP 503"
    assert paused.consecutive_failures == 3
    first = wait_for_delivery(first_id, webhook["id"], "held")
    assert first.attempts_count == 3
    assert api.get(f"/api/v1/webhooks/{webhook['id']}").json()["status"] == "paused"

    # while paused: new deliveries are held, and nothing is sent
    second_id, count = publish(api.client_obj)
    assert count == 1
    assert Delivery.objects.get(event_id=second_id).status == "held"
    sent = len(receiver.requests())
    time.sleep(0.6)  # several dispatch_due passes (100ms) and retry slots
    assert len(receiver.requests()) == sent == 3

    receiver.script("/flaky", Reply(200))
    response = api.post(f"/api/v1/webhooks/{webhook['id']}/resume")
    assert response.status_code == 200, response.content

    for event_id in (first_id, second_id):
        delivered = wait_for_delivery(event_id, webhook["id"], "succeeded")
        assert attempts_of(delivered)[-1].outcome == "ack"
    ids = [r.headers["webhook-id"] for r in receiver.requests()]
    assert ids.count(second_id) == 1
    assert ids.count(first_id) == 4
    resumed = Subscription.objects.get(pk=webhook["id"])
    assert (resumed.status, resumed.consecutive_failures) == ("active", 0)


def test_a_held_delivery_expires_at_its_ttl(stack_factory, receiver, api):
    stack = stack_factory(WEBHOOK_DELIVERY_TTL="1500ms")
    stack.start_worker()
    stack.start_beat()
    webhook = create_webhook(api, receiver.url("/hooks"))
    Subscription.objects.filter(pk=webhook["id"]).update(
        status="paused", paused_reason="paused by an operator"
    )
    event_id, _ = publish(api.client_obj)
    assert Delivery.objects.get(event_id=event_id).status == "held"

    started = time.monotonic()
    expired = wait_for_delivery(event_id, webhook["id"], "expired", timeout=10)
    assert 1.0 <= time.monotonic() - started < 5
    assert expired.attempts_count == 0
    assert receiver.requests() == []

    # resuming later does not send what expired
    response = api.post(f"/api/v1/webhooks/{webhook['id']}/resume")
    assert response.status_code == 200
    time.sleep(0.4)
    assert receiver.requests() == []
