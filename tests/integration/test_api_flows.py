"""The test endpoint and manual retry, end to end."""

import time

import pytest

from delivery.models import Delivery
from tests.support.api import assert_envelope
from tests.support.flows import attempts_of, create_webhook, publish
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def wait_for_status(delivery_id: str, *statuses: str) -> Delivery:
    return wait_until(
        lambda: Delivery.objects.filter(pk=delivery_id, status__in=statuses).first(),
        message=f"delivery {delivery_id} to be {statuses}",
    )


def test_the_test_endpoint_sends_once_and_never_retries(stack, receiver, api):
    stack.start_worker()
    stack.start_beat()
    receiver.script("/down", Reply(503))
    down = create_webhook(api, receiver.url("/down"))
    up = create_webhook(api, receiver.url("/up"))

    failing = api.post(f"/api/v1/webhooks/{down['id']}/test")
    passing = api.post(f"/api/v1/webhooks/{up['id']}/test")
    assert failing.status_code == passing.status_code == 202

    failed = wait_for_status(failing.json()["delivery_id"], "failed")
    succeeded = wait_for_status(passing.json()["delivery_id"], "succeeded")
    assert [a.outcome for a in attempts_of(failed)] == ["failure"]
    assert [a.outcome for a in attempts_of(succeeded)] == ["ack"]
    time.sleep(0.6)  # a retry would come after 100-200ms
    (request,) = receiver.requests("/down")
    assert request.headers["x-webhook-event"] == "TEST"
    assert len(receiver.requests("/up")) == 1
    # a failed test does not count against the webhook
    detail = api.get(f"/api/v1/webhooks/{down['id']}").json()
    assert detail["status"] == "active"


def test_a_manual_retry_sends_a_failed_delivery_again(stack, receiver, api):
    stack.start_worker()
    stack.start_beat()
    receiver.script("/hooks", Reply(400, b"unknown parcel"), Reply(200))
    webhook = create_webhook(api, receiver.url("/hooks"))
    event_id, _ = publish(api.client_obj)
    delivery = Delivery.objects.get(event_id=event_id)
    failed = wait_for_status(delivery.id, "failed")
    assert failed.attempts_count == 1

    response = api.post(f"/api/v1/deliveries/{delivery.id}/retry")
    assert response.status_code == 202, response.content
    wait_for_status(delivery.id, "succeeded")

    body = api.get(f"/api/v1/deliveries/{delivery.id}").json()
    assert [a["outcome"] for a in body["attempts"]] == ["permanent_failure", "ack"]
    assert [a["number"] for a in body["attempts"]] == [1, 2]
    requests = receiver.requests("/hooks")
    assert [r.headers["webhook-id"] for r in requests] == [event_id, event_id]
    assert_envelope(api.post(f"/api/v1/deliveries/{delivery.id}/retry"), 409)
    assert webhook["id"] == body["webhook_id"]
