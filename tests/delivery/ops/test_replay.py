from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from delivery.models import Delivery
from delivery.ops import replay
from delivery.ops.replay import ReplayResult, replay_deliveries
from delivery.pipeline import wakeups
from subscriptions.models import Subscription
from tests.support.rows import make_delivery


@pytest.fixture
def kicked(monkeypatch) -> list[int]:
    """Wake-ups asked for (instead of reaching the broker)."""
    counts: list[int] = []

    def fake(*, count: int = 0, countdowns=()) -> int:
        counts.append(count)
        return count

    monkeypatch.setattr(wakeups, "send_wakeups", fake)
    return counts


def _run(*args: str) -> str:
    out = StringIO()
    call_command("replay", *args, stdout=out)
    return out.getvalue()


def _aged(delivery: Delivery, age: timedelta) -> Delivery:
    Delivery.objects.filter(pk=delivery.pk).update(
        created_at=timezone.now() - age, updated_at=timezone.now() - age
    )
    delivery.refresh_from_db()
    return delivery


def test_the_command_replays_failed_and_expired_deliveries_as_new_due_ones(
    subscribe, kicked, django_capture_on_commit_callbacks, settings
):
    settings.WEBHOOK_DELIVERY_TTL = timedelta(hours=6)
    hook = subscribe("http://127.0.0.1:9/hooks")
    failed = _aged(make_delivery(hook, status="failed"), timedelta(hours=1))
    expired = _aged(make_delivery(hook, status="expired"), timedelta(hours=1))
    _aged(make_delivery(hook, status="succeeded"), timedelta(hours=1))
    _aged(make_delivery(hook, status="failed"), timedelta(hours=5))
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        output = _run("--webhook", str(hook.pk), "--since", "2h")

    assert "Replayed 2 deliveries; skipped 0" in output
    assert "[" + "#" * 30 + "] 2/2" in output
    new = Delivery.objects.filter(created_at__gte=before)
    assert sorted(d.event_id for d in new) == sorted(
        [failed.event_id, expired.event_id]
    )
    for delivery in new:
        assert delivery.subscription_id == hook.pk
        assert delivery.client_id == hook.client_id
        assert delivery.kind == Delivery.Kind.EVENT
        assert delivery.status == Delivery.Status.PENDING
        assert delivery.attempts_count == 0
        assert before <= delivery.next_attempt_at <= timezone.now()
        assert delivery.expires_at - delivery.created_at == pytest.approx(
            timedelta(hours=6), abs=timedelta(seconds=5)
        )
    assert sum(kicked) >= 1
    failed.refresh_from_db()
    assert failed.status == Delivery.Status.FAILED


def test_the_command_takes_an_iso_time_and_a_status_list(subscribe, kicked):
    hook = subscribe("http://127.0.0.1:9/hooks")
    _aged(make_delivery(hook, status="cancelled"), timedelta(days=2))
    _aged(make_delivery(hook, status="failed"), timedelta(days=2))
    since = (timezone.now() - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")

    output = _run("--webhook", str(hook.pk), "--since", since, "--status", "cancelled")

    assert "Replayed 1 deliveries; skipped 0" in output
    assert Delivery.objects.filter(status="pending").count() == 1


def test_deliveries_of_a_paused_webhook_are_skipped_and_reported(subscribe, kicked):
    hook = subscribe("http://127.0.0.1:9/hooks", status=Subscription.Status.PAUSED)
    make_delivery(hook, status="failed")
    make_delivery(hook, status="expired")

    output = _run("--webhook", str(hook.pk), "--since", "1h")

    assert "The webhook is paused" in output
    assert "Replayed 0 deliveries; skipped 2" in output
    assert not Delivery.objects.filter(status="pending").exists()
    assert kicked == []


def test_the_service_skips_expired_and_deleted_webhooks_tests_and_unfinished_rows(
    subscribe, kicked
):
    live = subscribe("http://127.0.0.1:9/live")
    past_ttl = subscribe(
        "http://127.0.0.1:9/old", expires_at=timezone.now() - timedelta(minutes=1)
    )
    expired = subscribe("http://127.0.0.1:9/exp", status=Subscription.Status.EXPIRED)
    gone = subscribe("http://127.0.0.1:9/gone")
    replayable = make_delivery(live, status="failed")
    make_delivery(live, status="failed", kind=Delivery.Kind.TEST)
    make_delivery(live, status="pending")
    make_delivery(past_ttl, status="failed")
    make_delivery(expired, status="failed")
    make_delivery(gone, status="failed")
    gone.delete()

    result = replay_deliveries(deliveries=Delivery.objects.all())

    assert result == ReplayResult(created=1, skipped=5)
    (new,) = Delivery.objects.filter(status="pending", event=replayable.event)
    assert new.subscription_id == live.pk


def test_replaying_twice_does_not_send_the_same_event_twice(subscribe, kicked):
    hook = subscribe("http://127.0.0.1:9/hooks")
    first = make_delivery(hook, status="failed")
    make_delivery(hook, status="expired", event=first.event)
    failed = Delivery.objects.filter(status__in=["failed", "expired"])

    assert replay_deliveries(deliveries=failed) == ReplayResult(created=1, skipped=1)
    assert replay_deliveries(deliveries=failed) == ReplayResult(created=0, skipped=2)
    assert Delivery.objects.filter(status="pending").count() == 1


def test_a_large_replay_works_in_chunks_and_reports_progress(
    subscribe, kicked, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(replay, "REPLAY_CHUNK", 3)
    hook = subscribe("http://127.0.0.1:9/hooks")
    for _ in range(7):
        make_delivery(hook, status="failed")
    progress: list[int] = []

    with django_capture_on_commit_callbacks(execute=True):
        result = replay_deliveries(
            deliveries=Delivery.objects.filter(subscription=hook),
            on_progress=progress.append,
        )

    assert result == ReplayResult(created=7, skipped=0)
    assert progress == [3, 6, 7]
    assert Delivery.objects.filter(status="pending").count() == 7
    assert sum(kicked) >= 3


def test_an_unknown_webhook_or_a_bad_since_is_a_command_error(subscribe):
    hook = subscribe("http://127.0.0.1:9/hooks")
    with pytest.raises(CommandError, match="no webhook"):
        _run("--webhook", "not-a-uuid", "--since", "1h")
    with pytest.raises(CommandError, match="--since"):
        _run("--webhook", str(hook.pk), "--since", "yesterday")
    with pytest.raises(CommandError, match="--status"):
        _run("--webhook", str(hook.pk), "--since", "1h", "--status", "lost")
