"""The engine and a webhook's rate limit in-process: a delivery with no room
is postponed to its planned slot without an attempt."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Attempt
from delivery.pipeline.engine import deliver_due_batch
from tests.support.rows import make_delivery, reload

pytestmark = pytest.mark.django_db


def test_a_delivery_beyond_the_rate_is_postponed_without_an_attempt(
    subscribe, receiver, kicked
):
    subscription = subscribe(receiver.url("/hooks"), rate_limit="30/m")
    first, second = make_delivery(subscription), make_delivery(subscription)
    before = timezone.now()

    report = deliver_due_batch(limit=10)

    assert report.claimed == 2
    assert len(receiver.requests()) == 1
    waiting, sent = sorted([reload(first), reload(second)], key=lambda d: d.status)
    assert (waiting.status, sent.status) == ("pending", "succeeded")
    assert waiting.attempts_count == 0
    assert waiting.last_error.startswith("rate limit 30/m (webhook)")
    # 30/m: one request every 2 s; a wait over a second is not slept.
    assert timedelta(seconds=1.9) <= waiting.next_attempt_at - before
    assert waiting.next_attempt_at - before < timedelta(seconds=3)
    assert not Attempt.objects.filter(delivery=waiting).exists()
