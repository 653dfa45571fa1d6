"""Seed 003 end to end, through a real worker and receiver: a trackingId
webhook ends when the terminal event (DELIVERED) about its resource is
published, not when the receiver acknowledges it; that delivery is still
sent and retried until it is acknowledged."""

import pytest

from tests.support.flows import attempts_of, create_webhook, publish, wait_for_delivery
from tests.support.receiver import Reply

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _status(api, webhook: dict) -> str:
    response = api.get(f"/api/v1/webhooks/{webhook['id']}")
    assert response.status_code == 200, response.content
    return response.json()["status"]


def test_a_terminal_event_ends_the_tracking_webhook_when_it_is_published(
    stack, receiver, api
):
    groups = ["IN_TRANSIT", "DELIVERED"]
    tracking = create_webhook(
        api, receiver.url("/track"), trackingId="PKG1", event_groups=groups
    )
    everything = create_webhook(api, receiver.url("/all"), event_groups=groups)
    stack.start_worker()

    in_transit, count = publish(api.client_obj, "IN_TRANSIT", resource_id="PKG1")
    assert count == 2
    wait_for_delivery(in_transit, tracking["id"], "succeeded")
    assert _status(api, tracking) == "active"

    # The receiver refuses the terminal event twice before acknowledging it.
    receiver.script("/track", Reply(503), Reply(503), Reply(200))
    delivered, count = publish(api.client_obj, "DELIVERED", resource_id="PKG1")

    assert count == 2
    # Ended at once, while its delivery of DELIVERED cannot have been acked.
    assert _status(api, tracking) == "expired"
    assert _status(api, everything) == "active"
    delivery = wait_for_delivery(
        delivered, tracking["id"], "succeeded", "failed", "expired"
    )
    assert delivery.status == "succeeded"
    codes = [attempt.status_code for attempt in attempts_of(delivery)]
    assert codes == [503, 503, 200]

    # Nothing more reaches the ended webhook; the other one still receives.
    later, count = publish(api.client_obj, "IN_TRANSIT", resource_id="PKG1")
    assert count == 1
    wait_for_delivery(later, everything["id"], "succeeded")
    assert len(receiver.requests("/track")) == 4
