"""Beat prunes by itself: with a short WEBHOOK_RETENTION, an event delivered
by the real worker is gone with its delivery and attempt soon after, while
an event whose delivery is still being retried stays."""

import json

import pytest

from delivery.models import Attempt, Delivery
from events.models import Event
from tests.support.flows import create_webhook, publish, wait_for_delivery
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _refuse_the_second_event(received) -> Reply:
    payload = json.loads(received.body)
    return Reply(503) if '"n": 2' in json.dumps(payload) else Reply(200)


def test_beat_prunes_delivered_events_past_the_retention(
    stack_factory, start_receiver, api
):
    stack = stack_factory(
        WEBHOOK_RETENTION="2s",
        WEBHOOK_PRUNE_INTERVAL="500ms",
        WEBHOOK_DELIVERY_TTL="60s",
        WEBHOOK_RETRY_SCHEDULE="300ms",
    )
    receiver = start_receiver(respond=_refuse_the_second_event)
    webhook = create_webhook(api, receiver.url("/hooks"))
    stack.start_worker()
    stack.start_beat()

    delivered, _ = publish(api.client_obj, payload={"n": 1})
    retried, _ = publish(api.client_obj, payload={"n": 2})
    wait_for_delivery(delivered, webhook["id"], "succeeded")

    wait_until(
        lambda: not Event.objects.filter(pk=delivered).exists(),
        timeout=20,
        message="beat to prune the delivered event",
    )
    assert not Delivery.objects.filter(event_id=delivered).exists()
    assert not Attempt.objects.filter(delivery__event_id=delivered).exists()
    # still failing and retried every 300 ms: its event and delivery stay
    pending = Delivery.objects.get(event_id=retried)
    assert pending.status == "pending" and pending.attempts_count >= 3
    assert Event.objects.filter(pk=retried).exists()
