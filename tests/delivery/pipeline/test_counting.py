"""The pipeline's Prometheus counts (delivery/pipeline/counting.py), in this
process's registry: attempts by outcome with their durations, deliveries by
final status, taken when the writing transaction commits. (Several processes
summed: tests/integration/test_metrics_processes.py.)"""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery import services
from delivery.models import Breaker
from delivery.pipeline.engine import deliver_due_batch
from delivery.policy import breaker
from tests.support.receiver import Reply
from tests.support.rows import make_delivery
from webhooks_project import metrics

pytestmark = pytest.mark.django_db


def value(name: str, **labels: str) -> float:
    found = metrics.scrape_registry().get_sample_value(name, labels)
    return found or 0.0


def snapshot() -> dict[str, float]:
    return {
        "ack": value("webhook_attempts_total", outcome="ack"),
        "failure": value("webhook_attempts_total", outcome="failure"),
        "permanent_failure": value(
            "webhook_attempts_total", outcome="permanent_failure"
        ),
        "skipped": value("webhook_attempts_total", outcome="skipped"),
        "timed": value("webhook_attempt_duration_seconds_count"),
        "slow": value("webhook_attempt_duration_seconds_bucket", le="+Inf")
        - value("webhook_attempt_duration_seconds_bucket", le="0.25"),
        "succeeded": value("webhook_deliveries_finished_total", status="succeeded"),
        "failed": value("webhook_deliveries_finished_total", status="failed"),
        "expired": value("webhook_deliveries_finished_total", status="expired"),
        "cancelled": value("webhook_deliveries_finished_total", status="cancelled"),
        "rate_limit": value("webhook_deliveries_postponed_total", reason="rate_limit"),
        "retry_after": value(
            "webhook_deliveries_postponed_total", reason="retry_after"
        ),
    }


def grown(before: dict[str, float]) -> dict[str, float]:
    after = snapshot()
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


def test_a_flush_counts_its_attempts_and_finished_deliveries_when_it_commits(
    subscribe, receiver, kicked, django_capture_on_commit_callbacks
):
    receiver.script("/ok", Reply(200), Reply(200))
    receiver.script("/busy", Reply(503))
    receiver.script("/slow", Reply(200, delay=0.3))
    receiver.script("/bad", Reply(400))
    for path in ("/ok", "/ok", "/busy", "/slow", "/bad"):
        make_delivery(subscribe(receiver.url(path)))
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_batch(limit=10)

    assert grown(before) == {
        "ack": 3,
        "failure": 1,
        "permanent_failure": 1,
        "timed": 5,
        "slow": 1,
        "succeeded": 3,
        "failed": 1,
    }


def test_nothing_is_counted_before_the_flush_commits(
    subscribe, receiver, kicked, django_capture_on_commit_callbacks
):
    make_delivery(subscribe(receiver.url()))
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        deliver_due_batch(limit=10)

    assert grown(before) == {}
    for callback in callbacks:
        callback()
    assert grown(before) == {"ack": 1, "timed": 1, "succeeded": 1}


@pytest.mark.parametrize(
    ("breaker_row", "counted"),
    [
        # An open breaker: an attempt recorded as skipped, no request.
        ("open_until", {"skipped": 1}),
        # Retry-After: postponed, neither a request nor an attempt.
        ("backpressure_until", {"retry_after": 1}),
    ],
)
def test_a_delivery_its_destination_holds_back_counts_without_a_duration(
    subscribe,
    receiver,
    kicked,
    django_capture_on_commit_callbacks,
    breaker_row,
    counted,
):
    hook = subscribe(receiver.url())
    Breaker.objects.create(
        destination=breaker.destination_of(receiver.url()),
        **{breaker_row: timezone.now() + timedelta(minutes=5)},
    )
    make_delivery(hook)
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_batch(limit=10)

    assert grown(before) == counted
    assert receiver.requests() == []


def test_a_delivery_put_off_by_its_rate_limit_counts_as_postponed_not_attempted(
    subscribe, receiver, kicked, django_capture_on_commit_callbacks
):
    hook = subscribe(receiver.url(), rate_limit="30/m")
    make_delivery(hook)
    make_delivery(hook)
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_batch(limit=10)

    assert grown(before) == {"ack": 1, "timed": 1, "succeeded": 1, "rate_limit": 1}
    assert len(receiver.requests()) == 1


def test_the_sweeps_count_what_they_finish(
    subscribe, django_capture_on_commit_callbacks
):
    now = timezone.now()
    hook = subscribe("http://127.0.0.1:9/hooks")
    other = subscribe("http://127.0.0.1:9/other")
    for _ in range(2):
        make_delivery(hook, expires_at=now - timedelta(seconds=1))
    make_delivery(hook)
    make_delivery(other, status="held")
    make_delivery(other)
    before = snapshot()

    with django_capture_on_commit_callbacks(execute=True):
        assert services.expire_overdue_deliveries() == 2
        assert services.cancel_unfinished_deliveries(subscription_id=other.id) == 2

    assert grown(before) == {"expired": 2, "cancelled": 2}
