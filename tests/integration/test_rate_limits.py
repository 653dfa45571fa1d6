"""Rate limits end to end: a webhook's `configuration.rate_limit` holds across
two worker processes (the shared limiter in Redis), at the receiver."""

import time

import pytest

from delivery.models import Attempt, Delivery
from tests.support.flows import create_webhook, publish
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def busiest_second(times: list[float]) -> int:
    """The most requests that arrived within any 1-second window."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_a_10_per_second_webhook_fed_300_events_never_gets_more(
    stack_factory, receiver, api
):
    stack = stack_factory(WEBHOOK_DELIVERY_TTL="2m")
    stack.start_worker()
    stack.start_worker()
    stack.start_beat()
    url = receiver.url("/limited")
    webhook = create_webhook(api, url, configuration={"url": url, "rate_limit": "10/s"})
    assert webhook["configuration"]["rate_limit"] == "10/s"
    unlimited = create_webhook(api, receiver.url("/free"))

    for _ in range(300):
        publish(api.client_obj)
    # The unlimited webhook of the same host gets its 300 at once.
    receiver.wait_for(300, path="/free", timeout=30)
    requests = receiver.wait_for(300, path="/limited", timeout=90)

    times = sorted(r.at for r in requests)
    busiest, took = busiest_second(times), times[-1] - times[0]
    figures = f"busiest second {busiest}, drained in {took:.1f} s"
    assert busiest <= 11, figures  # 10 per second, +1 at a window's edge
    # ~33 s: 299 intervals of 110 ms (100 ms and the margin), plus what a
    # loaded machine adds.
    assert 29 <= took <= 45, figures
    assert len({r.headers["webhook-id"] for r in requests}) == 300
    time.sleep(0.3)
    assert len(receiver.requests("/limited")) == 300
    # Postponed, not attempted: one attempt per delivery, all acks.
    assert set(Attempt.objects.values_list("outcome", flat=True)) == {"ack"}
    wait_until(
        lambda: (
            not Delivery.objects.filter(
                subscription_id__in=[webhook["id"], unlimited["id"]]
            )
            .exclude(status="succeeded")
            .exists()
        ),
        message="every delivery to succeed",
    )
    assert Attempt.objects.count() == 600
