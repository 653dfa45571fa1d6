"""A webhook's own delivery_ttl, end to end: with the deployment's TTL short,
a webhook that asked for a longer one keeps being retried after its
neighbour's delivery of the same event has expired, and gets it once the
receiver recovers."""

import time

import pytest

from tests.support.flows import attempts_of, create_webhook, publish, wait_for_delivery
from tests.support.receiver import Received, Reply

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DOWN_FOR = 3.0  # seconds: twice the deployment's TTL below


def test_a_long_ttl_webhook_keeps_retrying_after_the_default_ttl(
    stack_factory, start_receiver, api
):
    stack = stack_factory(WEBHOOK_DELIVERY_TTL="1500ms")
    published: list[float] = []

    def respond(received: Received) -> Reply:
        down = not published or time.monotonic() - published[0] < DOWN_FOR
        return Reply(503 if down else 200)

    receiver = start_receiver(respond)
    long_url, short_url = receiver.url("/long"), receiver.url("/short")
    long = create_webhook(api, long_url, configuration={
        "url": long_url, "delivery_ttl": "30s"
    })  # fmt: skip
    short = create_webhook(api, short_url)
    assert long["configuration"]["delivery_ttl"] == "30s"
    assert short["configuration"]["delivery_ttl"] == "1500ms"
    stack.start_worker()
    stack.start_beat()

    published.append(time.monotonic())
    event_id, count = publish(api.client_obj)
    assert count == 2

    expired = wait_for_delivery(event_id, short["id"], "expired", "succeeded")
    assert expired.status == "expired"
    delivered = wait_for_delivery(
        event_id, long["id"], "succeeded", "expired", "failed", timeout=20
    )
    assert delivered.status == "succeeded"
    attempts = attempts_of(delivered)
    assert attempts[-1].status_code == 200
    # It was still being tried well after the default TTL had run out.
    assert (attempts[-1].at - delivered.created_at).total_seconds() >= DOWN_FOR - 0.5
    published_at = delivered.event.created_at
    assert (delivered.expires_at - published_at).total_seconds() == 30
