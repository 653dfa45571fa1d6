"""delivery.pipeline.wakeups: the sweeper's wake-ups for due rows, and the
wake-ups sent for newly due deliveries."""

import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from delivery import services
from delivery.models import Delivery
from delivery.pipeline import claiming, wakeups
from tests.support.rows import make_delivery, make_event

pytestmark = pytest.mark.django_db


class TestDispatch:
    def test_it_counts_due_rows_up_to_a_cap(self, subscribe):
        subscription = subscribe("http://a.example/hooks")
        now = timezone.now()
        for _ in range(5):
            make_delivery(subscription, next_attempt_at=now - timedelta(seconds=1))
        make_delivery(subscription, next_attempt_at=now + timedelta(hours=3))
        assert claiming.count_due(now=now, cap=100) == 5
        assert claiming.count_due(now=now, cap=3) == 3

    def test_it_wakes_enough_workers_for_the_due_rows(
        self, subscribe, kicked, settings
    ):
        settings.WEBHOOK_BATCH_SIZE = 2
        subscription = subscribe("http://a.example/hooks")
        for _ in range(5):
            make_delivery(subscription)
        assert wakeups.dispatch_due_deliveries() == 3
        assert kicked == [{"count": 3, "countdowns": []}]

    def test_nothing_due_sends_nothing(self, subscribe, kicked):
        make_delivery(
            subscribe("http://a.example/hooks"),
            next_attempt_at=timezone.now() + timedelta(hours=1),
        )
        assert wakeups.dispatch_due_deliveries() == 0
        assert kicked == []

    def test_a_backlog_scheduled_for_later_is_found_with_an_index_scan(self, subscribe):
        subscription = subscribe("http://a.example/hooks")
        event = make_event(subscription.client)
        later = timezone.now() + timedelta(hours=3)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO delivery_delivery (id, event_id, subscription_id, "
                "client_id, kind, status, attempts_count, backoff_step, "
                "next_attempt_at, expires_at, created_at, updated_at, last_error) "
                "SELECT gen_random_uuid(), %s, %s, %s, 'event', 'pending', 0, 0, "
                "%s + (n || ' seconds')::interval, %s, now(), now(), '' "
                "FROM generate_series(1, 50000) AS n",
                [event.id, subscription.id, subscription.client_id, later, later],
            )
            cursor.execute("ANALYZE delivery_delivery")
        query = (
            Delivery.objects.filter(
                status="pending", next_attempt_at__lte=timezone.now()
            )
            .order_by()
            .values("id")[:1600]
        )
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "delivery_due" in plan, plan
        assert "Seq Scan" not in plan, plan
        assert claiming.count_due(now=timezone.now(), cap=1600) == 0


class TestWakeWorkers:
    @pytest.mark.parametrize(
        ("due", "batch", "expected"),
        [(0, 50, 0), (1, 50, 1), (50, 50, 1), (51, 50, 2), (10_000, 50, 32)],
    )
    def test_one_wake_up_per_batch_capped(self, due, batch, expected, settings):
        settings.WEBHOOK_BATCH_SIZE = batch
        assert wakeups.wakeups_for(due) == expected

    def test_wake_workers_sends_them(self, kicked, settings):
        settings.WEBHOOK_BATCH_SIZE = 50
        services.wake_workers(due_count=120)
        assert wakeups.flush(timeout=5)
        assert kicked == [{"count": 3, "countdowns": []}]

    def test_wake_workers_now_sends_them_before_returning(self, kicked, settings):
        settings.WEBHOOK_BATCH_SIZE = 50
        services.wake_workers_now(due_count=120)
        assert kicked == [{"count": 3, "countdowns": []}]

    def test_a_broker_failure_is_logged_not_raised(self, monkeypatch, caplog):
        def down():
            raise ConnectionRefusedError("Connection refused")

        monkeypatch.setattr(wakeups.app, "producer_or_acquire", down)
        with caplog.at_level(logging.WARNING, logger="webhooks.delivery"):
            assert wakeups.send_wakeups(count=2, countdowns=[1.5]) == 0
        assert "broker unreachable: 3 of 3 wake-ups not sent" in caplog.text


class TestCoalescer:
    """The web process's wake-up sender: a publish hands its count over and
    returns; counts that arrive while a send is in flight go out together."""

    def test_an_idle_process_sends_at_once(self, kicked, settings):
        # An interval far longer than the flush may wait: the first send must
        # not wait for it.
        settings.WEBHOOK_WAKEUP_INTERVAL = timedelta(hours=1)
        coalescer = wakeups._Coalescer()
        coalescer.wake(1)
        assert coalescer.flush(timeout=5)
        assert kicked == [{"count": 1, "countdowns": []}]

    def test_counts_arriving_during_a_send_are_summed_into_one(
        self, monkeypatch, settings
    ):
        settings.WEBHOOK_BATCH_SIZE = 10
        release = threading.Event()
        sent: list[int] = []

        def slow_send(*, count: int = 0, countdowns=()) -> int:
            sent.append(count)
            release.wait(5)
            return count

        monkeypatch.setattr(wakeups, "send_wakeups", slow_send)
        coalescer = wakeups._Coalescer()
        coalescer.wake(1)
        deadline = time.monotonic() + 5
        while not sent and time.monotonic() < deadline:
            time.sleep(0.01)
        for _ in range(50):
            coalescer.wake(1)  # while the first send is in flight
        release.set()
        assert coalescer.flush(timeout=5)
        assert sent == [1, 5]  # 50 due deliveries: five batches of ten

    def test_under_sustained_load_sends_are_paced_by_the_interval(self, settings):
        settings.WEBHOOK_WAKEUP_INTERVAL = timedelta(seconds=10)
        coalescer = wakeups._Coalescer()
        with coalescer._ready:
            waits = [coalescer._spend() for _ in range(wakeups.WAKEUP_BURST + 1)]
        assert waits[:-1] == [0.0] * wakeups.WAKEUP_BURST
        assert 9 < waits[-1] <= 10  # the next send is earned one interval on

    @pytest.mark.parametrize(
        ("publishes", "due_each", "paced_at"),
        [
            (1, 1, 10),
            (1, 500, 10),  # a batch publish: large already, not held back
            (wakeups.BUSY_PUBLISHES - 1, 1, 10),
            (wakeups.BUSY_PUBLISHES, 1, 10 * wakeups.BUSY_FACTOR),
        ],
    )
    def test_a_busy_process_is_paced_at_a_longer_interval(
        self, monkeypatch, settings, publishes, due_each, paced_at
    ):
        # Busy: its last send summed the counts of BUSY_PUBLISHES publishes or
        # more. Its wake-ups then claim more each, once the burst budget is
        # spent.
        settings.WEBHOOK_WAKEUP_INTERVAL = timedelta(seconds=10)
        release = threading.Event()
        started = threading.Event()

        def held_send(**kwargs) -> int:
            started.set()
            release.wait(5)  # the publishes below arrive while it is held
            return 1

        monkeypatch.setattr(wakeups, "send_wakeups", held_send)
        coalescer = wakeups._Coalescer()
        coalescer.wake(1)  # sent at once, held: the rest are summed
        assert started.wait(5)
        for _ in range(publishes):
            coalescer.wake(due_each)
        release.set()
        assert coalescer.flush(timeout=5)
        with coalescer._ready:
            waits = [coalescer._spend() for _ in range(wakeups.WAKEUP_BURST - 1)]
        assert waits[:-1] == [0.0] * (wakeups.WAKEUP_BURST - 2)
        assert paced_at - 1 < waits[-1] <= paced_at
