from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from delivery import services
from delivery.models import Attempt, Delivery
from tests.support.rows import make_delivery


def _run(*args: str) -> str:
    out = StringIO()
    call_command("prune_deliveries", *args, stdout=out)
    return out.getvalue()


def _delivery(hook, *, status: str, age: timedelta, attempts: int = 2) -> Delivery:
    delivery = make_delivery(hook, status=status)
    at = timezone.now() - age
    for number in range(1, attempts + 1):
        Attempt.objects.create(delivery=delivery, number=number, at=at, outcome="ack")
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=at, created_at=at)
    return delivery


def test_finished_deliveries_past_the_retention_are_deleted_with_their_attempts(
    subscribe, settings
):
    settings.WEBHOOK_RETENTION_DAYS = 30
    hook = subscribe("http://127.0.0.1:9/hooks")
    old = [
        _delivery(hook, status=status, age=timedelta(days=31))
        for status in ["succeeded", "failed", "expired", "cancelled"]
    ]
    recent = _delivery(hook, status="failed", age=timedelta(days=29))
    unfinished = _delivery(hook, status="pending", age=timedelta(days=31), attempts=0)
    held = _delivery(hook, status="held", age=timedelta(days=31), attempts=0)

    output = _run()

    assert "Deleted 4 deliveries and 8 attempts" in output
    assert not Delivery.objects.filter(pk__in=[d.pk for d in old]).exists()
    assert set(Delivery.objects.values_list("pk", flat=True)) == {
        recent.pk,
        unfinished.pk,
        held.pk,
    }
    assert Attempt.objects.filter(delivery=recent).count() == 2
    assert Attempt.objects.count() == 2


def test_older_than_overrides_the_retention_and_chunks_cover_everything(
    subscribe, monkeypatch
):
    monkeypatch.setattr(services, "SWEEP_CHUNK", 2)
    hook = subscribe("http://127.0.0.1:9/hooks")
    for _ in range(5):
        _delivery(hook, status="succeeded", age=timedelta(hours=3), attempts=1)
    kept = _delivery(hook, status="succeeded", age=timedelta(minutes=30))

    output = _run("--older-than", "2h")

    assert "Deleted 5 deliveries and 5 attempts" in output
    assert list(Delivery.objects.values_list("pk", flat=True)) == [kept.pk]


def test_old_attempts_of_a_live_delivery_are_pruned_too(subscribe):
    hook = subscribe("http://127.0.0.1:9/hooks")
    live = _delivery(hook, status="pending", age=timedelta(days=40), attempts=3)

    result = services.prune_finished_deliveries(older_than=timedelta(days=30))

    assert result == services.PruneResult(deliveries=0, attempts=3)
    assert Delivery.objects.filter(pk=live.pk).exists()


def test_a_bad_older_than_is_a_command_error(db):
    with pytest.raises(CommandError, match="--older-than"):
        _run("--older-than", "a while")
