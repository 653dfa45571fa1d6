"""Destination-wide backpressure end to end: a 429 with Retry-After from one
destination (scheme, host, port) stops requests to it from every webhook for
that long, without attempts or failures; another destination is unaffected."""

import time

import pytest

from delivery.models import Attempt, Breaker, Delivery
from delivery.policy.breaker import destination_of
from tests.support.flows import create_webhook, publish
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

WAIT = 5.0
# Requests claimed before the 429 was recorded may still arrive this long after it.
IN_FLIGHT = 1.0


def test_a_429_with_retry_after_postpones_every_webhook_of_that_destination(
    stack_factory, start_receiver, api
):
    stack = stack_factory(
        WEBHOOK_RETRY_AFTER_MAX="10s",
        WEBHOOK_BACKPRESSURE_MAX="10s",
        WEBHOOK_DELIVERY_TTL="1m",
    )
    stack.start_worker()
    stack.start_beat()
    busy, other = start_receiver(), start_receiver()
    busy.script("/a1", Reply(429, headers={"Retry-After": "5"}), Reply(200))
    webhooks = [
        create_webhook(api, busy.url("/a1")),
        create_webhook(api, busy.url("/a2")),
        create_webhook(api, other.url("/b")),
    ]

    # An event every 200 ms, reaching all three webhooks, for 9 s.
    published = []
    started = time.monotonic()
    while time.monotonic() - started < 9:
        published.append(publish(api.client_obj)[0])
        time.sleep(0.2)

    refused = busy.requests("/a1")[0]
    postponed = Breaker.objects.get(destination=destination_of(busy.url()))
    assert refused.at + WAIT - 0.5 < postponed.backpressure_until.timestamp()
    assert postponed.backpressure_until.timestamp() < refused.at + WAIT + 1
    assert postponed.consecutive_failures == 0

    quiet = (refused.at + IN_FLIGHT, refused.at + WAIT - 0.2)
    to_busy = [r.at for r in busy.requests() if quiet[0] <= r.at <= quiet[1]]
    to_other = [r.at for r in other.requests() if quiet[0] <= r.at <= quiet[1]]
    assert to_busy == []
    assert len(to_other) >= 5  # ~19 events in that window; sent as published
    resumed = min(r.at for r in busy.requests() if r.at > refused.at + IN_FLIGHT)
    assert refused.at + WAIT - 0.2 <= resumed <= refused.at + WAIT + 3

    everything = len(published) * len(webhooks)
    wait_until(
        lambda: Delivery.objects.filter(status="succeeded").count() == everything,
        timeout=30,
        message=f"all {everything} deliveries to succeed",
    )
    # Postponed, not attempted: the only non-ack attempt is the 429 itself.
    outcomes = list(Attempt.objects.exclude(outcome="ack").values_list("outcome"))
    assert outcomes == [("retry",)]
    assert not Delivery.objects.filter(attempts_count__gt=1).exclude(
        subscription_id=webhooks[0]["id"]
    )
