"""A receiver that answers 410 Gone disables its webhook: its deliveries are
held (nothing more is sent) until the webhook is resumed, as when paused."""

import time

import pytest

from delivery.models import Delivery
from subscriptions.models import Subscription
from tests.support.flows import attempts_of, create_webhook, publish, wait_for_delivery
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_410_disables_the_webhook_holds_its_deliveries_and_resume_sends_them(
    stack, receiver, api
):
    stack.start_worker()
    stack.start_beat()
    receiver.script("/gone", Reply(410))
    webhook = create_webhook(api, receiver.url("/gone"))
    first_id, _ = publish(api.client_obj)

    disabled = wait_until(
        lambda: Subscription.objects.filter(
            pk=webhook["id"], status="disabled"
        ).first(),
        message="the webhook to be disabled",
    )
    assert disabled.paused_reason.startswith("the receiver answered HTTP 410 Gone")
    first = wait_for_delivery(first_id, webhook["id"], "held")
    assert [a.status_code for a in attempts_of(first)] == [410]
    shown = api.get(f"/api/v1/webhooks/{webhook['id']}").json()
    assert shown["status"] == "disabled"
    assert shown["paused_reason"] == disabled.paused_reason
    listed = api.get("/api/v1/webhooks?status=disabled").json()
    assert [w["id"] for w in listed] == [webhook["id"]]

    # while disabled: new deliveries are held and nothing is sent
    second_id, count = publish(api.client_obj)
    assert count == 1
    assert Delivery.objects.get(event_id=second_id).status == "held"
    time.sleep(0.6)  # several dispatch_due passes (100ms) and retry slots
    assert len(receiver.requests()) == 1

    receiver.script("/gone", Reply(200))
    response = api.post(f"/api/v1/webhooks/{webhook['id']}/resume")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "active"
    for event_id in (first_id, second_id):
        wait_for_delivery(event_id, webhook["id"], "succeeded")
    assert Subscription.objects.get(pk=webhook["id"]).status == "active"


def test_a_410_to_a_test_delivery_does_not_disable(stack, receiver, api):
    stack.start_worker()
    receiver.script("/gone", Reply(410))
    webhook = create_webhook(api, receiver.url("/gone"))
    response = api.post(f"/api/v1/webhooks/{webhook['id']}/test")
    assert response.status_code in (200, 202), response.content
    receiver.wait_for(1, path="/gone")
    wait_until(
        lambda: Delivery.objects.filter(
            subscription_id=webhook["id"], status="failed"
        ).exists(),
        message="the test delivery to fail",
    )
    assert Subscription.objects.get(pk=webhook["id"]).status == "active"
