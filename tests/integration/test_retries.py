"""Retries end to end: the gaps follow the schedule within its jitter, every
retry carries the same webhook-id and a valid signature, and the delivery
expires at its TTL."""

import json
from datetime import timedelta
from itertools import pairwise

import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.flows import (
    attempts_of,
    create_webhook,
    publish,
    wait_for_delivery,
)
from tests.support.receiver import Reply

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# WEBHOOK_RETRY_SCHEDULE=100ms,200ms,400ms (the last repeats), ±10% jitter.
SCHEDULE = [0.1, 0.2, 0.4]
JITTER = 0.1
# What it costs to wake a worker, claim and send: added on top, never taken off.
LATENCY = 0.15


def test_retries_follow_the_schedule_with_one_id_and_valid_signatures_until_ttl(
    stack, receiver, api
):
    stack.start_worker()
    stack.start_beat()
    receiver.script("/down", Reply(503))
    webhook = create_webhook(api, receiver.url("/down"))
    event_id, _ = publish(api.client_obj, payload={"status": "delivered"})

    delivery = wait_for_delivery(event_id, webhook["id"], "expired", timeout=20)
    requests = receiver.requests("/down")

    # the TTL (5 s from publishing) bounds the retries
    attempts = attempts_of(delivery)
    assert len(attempts) == len(requests)
    assert 9 <= len(requests) <= 15
    ttl_end = delivery.expires_at
    assert delivery.expires_at - delivery.event.created_at == timedelta(seconds=5)
    assert all(attempt.at <= ttl_end for attempt in attempts)
    assert [a.outcome for a in attempts] == ["failure"] * len(attempts)

    # the gaps follow the table (the last entry repeating) within the jitter
    gaps = [later.at - earlier.at for earlier, later in pairwise(requests)]
    for n, gap in enumerate(gaps):
        base = SCHEDULE[min(n, len(SCHEDULE) - 1)]
        assert base * (1 - JITTER) - 0.01 <= gap <= base * (1 + JITTER) + LATENCY, (
            n,
            gaps,
        )
    # ... and are really jittered, not all identical
    assert len({round(gap, 3) for gap in gaps[2:]}) > 1

    # every retry is the same message: same webhook-id, same body, valid signature
    assert {r.headers["webhook-id"] for r in requests} == {event_id}
    assert len({r.body for r in requests}) == 1
    verifier = Webhook(webhook["secret"])
    for request in requests:
        assert verifier.verify(request.body, request.headers) == json.loads(
            request.body
        )

    # nothing is sent after expiry
    count = len(requests)
    receiver.script("/down", Reply(200))
    with pytest.raises(AssertionError):
        receiver.wait_for(count + 1, path="/down", timeout=0.6)
