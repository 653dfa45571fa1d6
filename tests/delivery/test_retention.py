import time
from datetime import timedelta

import psycopg2
import pytest
from django.db import connection
from django.utils import timezone

from delivery import retention, tasks
from delivery.models import Attempt, Delivery
from events.models import Event
from tests.support.rows import make_delivery, make_event
from tests.support.stack import database_url

DAY = timedelta(days=1)


@pytest.fixture(autouse=True)
def _checked_foreign_keys_and_no_rests(db, settings):
    # The test's transaction never commits: check the (deferred) foreign keys
    # at each statement instead, so deleting a referenced event fails here.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    settings.WEBHOOK_PRUNE_DUTY = 1.0


@pytest.fixture
def hook(subscribe):
    return subscribe("http://127.0.0.1:9/hooks")


def old_event(hook, age: timedelta) -> Event:
    event = make_event(hook.client)
    Event.objects.filter(pk=event.pk).update(created_at=timezone.now() - age)
    return event


def delivery(
    hook, event: Event, *, status: str, age: timedelta, attempts: int = 2
) -> Delivery:
    row = make_delivery(hook, event=event, status=status)
    at = timezone.now() - age
    for number in range(1, attempts + 1):
        Attempt.objects.create(delivery=row, number=number, at=at, outcome="ack")
    Delivery.objects.filter(pk=row.pk).update(updated_at=at, created_at=at)
    return row


def exists(row) -> bool:
    return type(row).objects.filter(pk=row.pk).exists()


def test_old_events_go_with_their_finished_deliveries_and_attempts(hook, settings):
    settings.WEBHOOK_RETENTION = timedelta(days=30)
    gone = []
    for status in ["succeeded", "failed", "expired", "cancelled"]:
        event = old_event(hook, 32 * DAY)
        gone += [event, delivery(hook, event, status=status, age=31 * DAY)]
    undelivered = old_event(hook, 32 * DAY)  # matched no webhook
    recent = old_event(hook, 29 * DAY)
    recent_delivery = delivery(hook, recent, status="succeeded", age=29 * DAY)

    result = retention.prune()

    assert (result.events, result.deliveries, result.attempts) == (5, 4, 8)
    assert result.complete
    assert not any(exists(row) for row in [*gone, undelivered])
    assert exists(recent) and exists(recent_delivery)
    assert Attempt.objects.filter(delivery=recent_delivery).count() == 2


@pytest.mark.parametrize("status", ["pending", "held"])
def test_an_unfinished_deliverys_event_stays(hook, status):
    event = old_event(hook, 40 * DAY)
    unfinished = delivery(hook, event, status=status, age=35 * DAY, attempts=1)
    finished = delivery(hook, event, status="failed", age=35 * DAY)

    result = retention.prune(older_than=30 * DAY)

    assert exists(event) and exists(unfinished)
    assert not exists(finished)  # finished and old: its own retention is over
    # the unfinished delivery's old attempt goes; the delivery's state stays
    assert (result.events, result.deliveries, result.attempts) == (0, 1, 3)


def test_a_delivery_changed_within_the_retention_keeps_its_event(hook):
    event = old_event(hook, 40 * DAY)
    retried = delivery(hook, event, status="succeeded", age=2 * DAY)

    result = retention.prune(older_than=30 * DAY)

    assert result.rows == 0
    assert exists(event) and exists(retried)


def test_chunks_cover_everything_and_events_published_at_one_instant(hook, monkeypatch):
    monkeypatch.setattr(retention, "PRUNE_CHUNK", 2)
    instant = timezone.now() - 3 * DAY
    events = [make_event(hook.client) for _ in range(7)]
    Event.objects.filter(pk__in=[e.pk for e in events]).update(created_at=instant)
    for event in events[:5]:
        delivery(hook, event, status="succeeded", age=3 * DAY, attempts=1)
    # three events of the same instant are kept: the walk must still end
    for event in events[5:]:
        delivery(hook, event, status="pending", age=3 * DAY, attempts=0)
    held = old_event(hook, 3 * DAY)
    delivery(hook, held, status="held", age=3 * DAY, attempts=0)

    result = retention.prune(older_than=timedelta(hours=1))

    assert (result.events, result.deliveries, result.attempts) == (5, 5, 5)
    assert set(Event.objects.values_list("pk", flat=True)) == {
        events[5].pk,
        events[6].pk,
        held.pk,
    }


def test_a_spent_time_budget_stops_before_the_first_chunk(hook):
    event = old_event(hook, 40 * DAY)
    delivery(hook, event, status="succeeded", age=40 * DAY)

    result = retention.prune(older_than=30 * DAY, time_budget=timedelta(0))

    assert not result.complete
    assert result.rows == 0 and exists(event)


def test_beats_task_prunes_with_the_settings(hook, settings):
    settings.WEBHOOK_RETENTION = timedelta(days=7)
    old = old_event(hook, 8 * DAY)
    delivery(hook, old, status="expired", age=8 * DAY)
    young = old_event(hook, 6 * DAY)

    tasks.prune_old_rows()

    assert not exists(old) and exists(young)


def test_it_rests_so_as_to_work_only_its_duty_share(hook, settings, monkeypatch):
    settings.WEBHOOK_PRUNE_DUTY = 0.25
    monkeypatch.setattr(retention, "PRUNE_CHUNK", 1)
    for _ in range(3):
        delivery(hook, old_event(hook, 40 * DAY), status="succeeded", age=40 * DAY)
    # Each chunk's own duration, paired with the rest that follows it. (The
    # whole prune's wall time also holds the last chunk of each step, which
    # finds nothing and ends it without a rest: on a busy machine that share
    # varies too much to compare the sum of the rests with.)
    chunks: list[float] = []
    for name in ("_deliveries_of_old_events", "_old_events", "_old_attempts"):
        monkeypatch.setattr(retention, name, _timed(getattr(retention, name), chunks))
    rests: list[tuple[float, float]] = []
    monkeypatch.setattr(
        retention.time, "sleep", lambda s: rests.append((s, chunks[-1]))
    )

    result = retention.prune(older_than=30 * DAY)

    assert (result.events, result.deliveries) == (3, 3)
    # one rest after each chunk that deleted something: 3 deliveries, 3 events
    assert len(rests) == 6
    assert all(rest > 0 for rest, _ in rests)
    # three times as long resting as its chunk worked
    for rest, chunk in rests:
        assert rest == pytest.approx(3 * chunk, rel=0.5)


def _timed(step, durations: list[float]):
    """step, appending how long each call took to durations."""

    def timed(*args):
        began = time.monotonic()
        try:
            return step(*args)
        finally:
            durations.append(time.monotonic() - began)

    return timed


@pytest.mark.django_db(transaction=True)
def test_a_delivery_a_worker_holds_is_skipped_with_its_event(hook):
    held_by_worker = old_event(hook, 40 * DAY)
    busy = delivery(hook, held_by_worker, status="succeeded", age=40 * DAY)
    free = old_event(hook, 40 * DAY)
    delivery(hook, free, status="succeeded", age=40 * DAY)
    worker = psycopg2.connect(database_url())
    try:
        with worker.cursor() as cursor:  # a claim or a retry holds the row
            cursor.execute(
                "SELECT 1 FROM delivery_delivery WHERE id = %s FOR UPDATE",
                [str(busy.pk)],
            )
            result = retention.prune(older_than=30 * DAY)
    finally:
        worker.rollback()
        worker.close()

    # the held delivery and its event stay (its old attempts go: step 3)
    assert (result.events, result.deliveries, result.attempts) == (1, 1, 4)
    assert exists(held_by_worker) and exists(busy)
    assert not exists(free)
    after = retention.prune(older_than=30 * DAY)  # the next run takes them
    assert (after.events, after.deliveries) == (1, 1)
