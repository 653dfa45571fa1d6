from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from delivery.models import Attempt, Delivery
from events.models import Event
from tests.support.rows import make_delivery


def _run(*args: str) -> str:
    out = StringIO()
    call_command("prune_deliveries", *args, stdout=out)
    return out.getvalue()


def _delivery(hook, *, status: str, age: timedelta) -> Delivery:
    delivery = make_delivery(hook, status=status)
    at = timezone.now() - age
    Attempt.objects.create(delivery=delivery, number=1, at=at, outcome="ack")
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=at, created_at=at)
    Event.objects.filter(pk=delivery.event_id).update(created_at=at)
    return delivery


def test_it_prunes_past_the_retention_and_says_what_it_deleted(subscribe, settings):
    settings.WEBHOOK_RETENTION = timedelta(days=30)
    hook = subscribe("http://127.0.0.1:9/hooks")
    _delivery(hook, status="succeeded", age=timedelta(days=31))
    kept = _delivery(hook, status="succeeded", age=timedelta(days=29))

    output = _run()

    assert "Deleted 1 events, 1 deliveries and 1 attempts" in output
    assert list(Delivery.objects.values_list("pk", flat=True)) == [kept.pk]


def test_older_than_overrides_the_retention(subscribe):
    hook = subscribe("http://127.0.0.1:9/hooks")
    for _ in range(3):
        _delivery(hook, status="failed", age=timedelta(hours=3))
    kept = _delivery(hook, status="failed", age=timedelta(minutes=30))

    output = _run("--older-than", "2h")

    assert "Deleted 3 events, 3 deliveries and 3 attempts" in output
    assert list(Delivery.objects.values_list("pk", flat=True)) == [kept.pk]


@pytest.mark.parametrize("value", ["a while", "0s"])
def test_a_bad_older_than_is_a_command_error(db, value):
    with pytest.raises(CommandError, match="--older-than"):
        _run("--older-than", value)
