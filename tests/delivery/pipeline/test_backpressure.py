"""Destination-wide backpressure in-process: what a 429/503 with Retry-After
writes on the destination's row, and how the next batch postpones deliveries
to it without a request or an attempt."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Attempt, Breaker, Delivery
from delivery.pipeline.engine import deliver_due_batch
from delivery.policy.breaker import destination_of
from tests.support.factories import ClientFactory
from tests.support.receiver import Reply
from tests.support.rows import make_delivery, reload

pytestmark = pytest.mark.django_db


def _row(url: str) -> Breaker | None:
    return Breaker.objects.filter(destination=destination_of(url)).first()


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_postpones_the_destinations_other_deliveries(
    subscribe, receiver, kicked, settings, status
):
    settings.WEBHOOK_BACKPRESSURE_MAX = timedelta(minutes=5)
    receiver.script("/a", Reply(status, headers={"Retry-After": "120"}))
    refused = make_delivery(subscribe(receiver.url("/a")))
    before = timezone.now()
    deliver_due_batch(limit=10)
    until = _row(receiver.url()).backpressure_until
    assert timedelta(seconds=120) <= until - before < timedelta(seconds=122)

    # Another tenant's webhook on the same scheme://host:port waits too.
    other_tenant = ClientFactory(name="globex")
    waiting = make_delivery(subscribe(receiver.url("/b"), client=other_tenant))
    report = deliver_due_batch(limit=10)

    assert (report.claimed, report.sent, report.skipped) == (1, 0, 1)
    waiting = reload(waiting)
    assert (waiting.status, waiting.next_attempt_at) == ("pending", until)
    assert waiting.attempts_count == 0
    assert "asked to wait (Retry-After)" in waiting.last_error
    assert not Attempt.objects.filter(delivery=waiting).exists()
    assert [r.path for r in receiver.requests()] == ["/a"]
    assert reload(refused).attempts_count == 1


def test_the_wait_is_capped_and_a_longer_one_recorded_is_kept(
    subscribe, receiver, kicked, settings
):
    settings.WEBHOOK_BACKPRESSURE_MAX = timedelta(seconds=30)
    receiver.script("/a", Reply(429, headers={"Retry-After": "3600"}))
    make_delivery(subscribe(receiver.url("/a")))
    before = timezone.now()
    deliver_due_batch(limit=10)
    until = _row(receiver.url()).backpressure_until
    assert timedelta(seconds=30) <= until - before < timedelta(seconds=32)

    later = timezone.now() + timedelta(minutes=2)
    Breaker.objects.update(backpressure_until=later)
    Delivery.objects.update(next_attempt_at=timezone.now())
    # Postponed again, without a request, and the later time stays.
    deliver_due_batch(limit=10)
    assert _row(receiver.url()).backpressure_until == later
    assert len(receiver.requests()) == 1


def test_the_wait_never_exceeds_the_retry_after_cap(
    subscribe, receiver, kicked, settings
):
    settings.WEBHOOK_BACKPRESSURE_MAX = timedelta(minutes=5)
    settings.WEBHOOK_RETRY_AFTER_MAX = timedelta(seconds=20)
    receiver.script("/a", Reply(429, headers={"Retry-After": "120"}))
    refused = make_delivery(subscribe(receiver.url("/a")))
    before = timezone.now()
    deliver_due_batch(limit=10)
    until = _row(receiver.url()).backpressure_until
    assert timedelta(seconds=20) <= until - before < timedelta(seconds=22)
    # The answered delivery's own retry is due at the same cap, not later.
    assert reload(refused).next_attempt_at <= until + timedelta(seconds=1)


def test_without_retry_after_or_with_the_cap_at_zero_nothing_is_postponed(
    subscribe, receiver, kicked, settings
):
    receiver.script("/plain", Reply(429))
    make_delivery(subscribe(receiver.url("/plain")))
    deliver_due_batch(limit=10)
    assert _row(receiver.url("/plain")) is None

    settings.WEBHOOK_BACKPRESSURE_MAX = timedelta(0)
    receiver.script("/off", Reply(503, headers={"Retry-After": "60"}))
    make_delivery(subscribe(receiver.url("/off")))
    deliver_due_batch(limit=10)
    row = _row(receiver.url("/off"))
    assert row is None or row.backpressure_until is None


def test_a_postponed_delivery_past_its_ttl_expires(subscribe, receiver, kicked):
    Breaker.objects.create(
        destination=destination_of(receiver.url()),
        backpressure_until=timezone.now() + timedelta(hours=1),
    )
    delivery = make_delivery(
        subscribe(receiver.url("/a")), expires_at=timezone.now() + timedelta(minutes=1)
    )
    deliver_due_batch(limit=10)
    assert reload(delivery).status == "expired"
    assert receiver.requests() == []
