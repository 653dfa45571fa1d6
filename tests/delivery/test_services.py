"""Delivery services that other apps, tasks and the API call."""

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from delivery import claiming, kicks, services
from delivery.models import Attempt, Delivery
from subscriptions.models import Subscription, SubscriptionFilter
from tests.delivery.conftest import make_delivery, make_event
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db


def reload(delivery: Delivery) -> Delivery:
    return Delivery.objects.get(pk=delivery.pk)


class TestCreateDeliveries:
    def test_one_per_subscription_held_when_paused(self, subscribe, sql_path):
        active = subscribe("http://a.example/hooks")
        paused = subscribe("http://b.example/hooks", status="paused")
        event = make_event(active.client)
        created = services.create_deliveries(
            event=event, subscriptions=Subscription.objects.all()
        )
        assert created == services.CreatedDeliveries(total=2, due=1)
        rows = {d.subscription_id: d for d in Delivery.objects.filter(event=event)}
        assert rows[active.id].status == "pending"
        assert rows[active.id].next_attempt_at == event.created_at
        assert rows[paused.id].status == "held"
        for row in rows.values():
            assert row.kind == "event"
            assert row.client_id == active.client_id
            assert row.expires_at == event.created_at + timedelta(hours=24)
            assert row.attempts_count == 0
            assert row.created_at is not None

    def test_a_subscription_listed_twice_gets_one_delivery(self, subscribe, sql_path):
        subscription = subscribe("http://a.example/hooks")
        for subtype in ["", "RELEASED"]:  # STATUS_CHANGED and STATUS_CHANGED:RELEASED
            SubscriptionFilter.objects.create(
                subscription=subscription, event_type="STATUS_CHANGED", subtype=subtype
            )
        event = make_event(subscription.client)
        twice = Subscription.objects.filter(filters__event_type="STATUS_CHANGED")
        assert twice.count() == 2
        created = services.create_deliveries(event=event, subscriptions=twice)
        assert created.total == 1
        assert Delivery.objects.filter(event=event).count() == 1

    def test_nothing_matching_creates_nothing(self, subscribe, sql_path):
        event = make_event(ClientFactory(name="acme"))
        assert (
            services.create_deliveries(
                event=event, subscriptions=Subscription.objects.none()
            ).total
            == 0
        )

    def test_a_large_fan_out_is_one_statement_on_postgresql(
        self, subscribe, django_assert_max_num_queries
    ):
        client = ClientFactory(name="acme")
        for n in range(50):
            subscribe(f"http://{n}.example/hooks", client=client)
        event = make_event(client)
        with django_assert_max_num_queries(1):
            created = services.create_deliveries(
                event=event, subscriptions=Subscription.objects.filter(client=client)
            )
        assert created == services.CreatedDeliveries(total=50, due=50)


class TestClaiming:
    def test_a_claim_takes_a_lease_and_hides_the_row(self, subscribe, sql_path):
        delivery = make_delivery(subscribe("http://a.example/hooks"))
        now = timezone.now()
        token, rows = claiming.claim_due(limit=10, now=now)
        assert [row.id for row in rows] == [delivery.id]
        claimed = reload(delivery)
        assert claimed.lease_token == token
        assert claimed.status == "pending"
        assert claimed.next_attempt_at == now + timedelta(minutes=1)
        assert claiming.claim_due(limit=10, now=now)[1] == []

    def test_a_claim_whose_lease_ran_out_can_be_claimed_again(
        self, subscribe, sql_path
    ):
        delivery = make_delivery(subscribe("http://a.example/hooks"))
        now = timezone.now()
        first, _ = claiming.claim_due(limit=10, now=now)
        later = now + timedelta(minutes=1, seconds=1)
        second, rows = claiming.claim_due(limit=10, now=later)
        assert [row.id for row in rows] == [delivery.id]
        assert second != first
        assert reload(delivery).lease_token == second

    def test_oldest_due_first_up_to_the_limit(self, subscribe, sql_path):
        subscription = subscribe("http://a.example/hooks")
        now = timezone.now()
        ages = [5, 1, 3, 4, 2]
        made = {
            age: make_delivery(
                subscription, next_attempt_at=now - timedelta(minutes=age)
            )
            for age in ages
        }
        _, rows = claiming.claim_due(limit=3, now=now)
        assert {row.id for row in rows} == {made[5].id, made[4].id, made[3].id}

    @pytest.mark.parametrize("status", ["held", "succeeded", "failed", "expired"])
    def test_only_pending_rows_are_claimed(self, subscribe, status, sql_path):
        make_delivery(subscribe("http://a.example/hooks"), status=status)
        assert claiming.claim_due(limit=10, now=timezone.now())[1] == []


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
        assert services.dispatch_due_deliveries() == 3
        assert kicked == [{"count": 3, "countdowns": []}]

    def test_nothing_due_sends_nothing(self, subscribe, kicked):
        make_delivery(
            subscribe("http://a.example/hooks"),
            next_attempt_at=timezone.now() + timedelta(hours=1),
        )
        assert services.dispatch_due_deliveries() == 0
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
        assert kicks.kicks_for(due) == expected

    def test_wake_workers_sends_them(self, kicked, settings):
        settings.WEBHOOK_BATCH_SIZE = 50
        services.wake_workers(due_count=120)
        assert kicked == [{"count": 3, "countdowns": []}]

    def test_a_broker_failure_is_logged_not_raised(self, monkeypatch, caplog):
        def down():
            raise ConnectionRefusedError("Connection refused")

        monkeypatch.setattr(kicks.app, "producer_or_acquire", down)
        with caplog.at_level(logging.WARNING, logger="webhooks.delivery"):
            assert kicks.send_kicks(count=2, countdowns=[1.5]) == 0
        assert "broker unreachable: 3 of 3 wake-ups not sent" in caplog.text


class TestHoldReleaseCancel:
    def test_hold_holds_pending_only(self, subscribe):
        subscription = subscribe("http://a.example/hooks")
        pending = make_delivery(subscription)
        done = make_delivery(subscription, status="succeeded")
        assert services.hold_pending_deliveries(subscription_id=subscription.id) == 1
        assert reload(pending).status == "held"
        assert reload(done).status == "succeeded"

    def test_release_makes_held_due_now_and_expires_the_overdue(
        self, subscribe, kicked, django_capture_on_commit_callbacks
    ):
        subscription = subscribe("http://a.example/hooks")
        now = timezone.now()
        held = make_delivery(subscription, status="held", next_attempt_at=None)
        overdue = make_delivery(
            subscription, status="held", expires_at=now - timedelta(seconds=1)
        )
        with django_capture_on_commit_callbacks(execute=True):
            released = services.release_held_deliveries(subscription_id=subscription.id)
        assert released == 1
        assert reload(held).status == "pending"
        assert reload(held).next_attempt_at <= timezone.now()
        assert reload(overdue).status == "expired"
        assert kicked == [{"count": 1, "countdowns": []}]

    def test_cancel_cancels_unfinished_and_drops_the_lease(self, subscribe):
        subscription = subscribe("http://a.example/hooks")
        import uuid

        claimed = make_delivery(subscription, lease_token=uuid.uuid4())
        held = make_delivery(subscription, status="held")
        failed = make_delivery(subscription, status="failed")
        assert (
            services.cancel_unfinished_deliveries(subscription_id=subscription.id) == 2
        )
        assert reload(claimed).status == "cancelled"
        assert reload(claimed).lease_token is None
        assert reload(held).status == "cancelled"
        assert reload(failed).status == "failed"


class TestSweeps:
    def test_overdue_deliveries_expire_but_not_one_in_flight(self, subscribe):
        import uuid

        subscription = subscribe("http://a.example/hooks")
        now = timezone.now()
        past = now - timedelta(seconds=1)
        overdue = make_delivery(subscription, expires_at=past)
        held = make_delivery(subscription, status="held", expires_at=past)
        in_flight = make_delivery(
            subscription,
            expires_at=past,
            lease_token=uuid.uuid4(),
            next_attempt_at=now + timedelta(seconds=30),
        )
        lease_ran_out = make_delivery(
            subscription,
            expires_at=past,
            lease_token=uuid.uuid4(),
            next_attempt_at=past,
        )
        fresh = make_delivery(subscription)
        assert services.expire_overdue_deliveries() == 3
        assert reload(overdue).status == "expired"
        assert reload(held).status == "expired"
        assert reload(lease_ran_out).status == "expired"
        assert reload(in_flight).status == "pending"
        assert reload(fresh).status == "pending"

    def test_overdue_subscriptions_expire(self, subscribe):
        past = timezone.now() - timedelta(seconds=1)
        old = subscribe("http://a.example/hooks", expires_at=past)
        paused = subscribe("http://b.example/hooks", expires_at=past, status="paused")
        live = subscribe("http://c.example/hooks")
        assert services.expire_overdue_subscriptions() == 2
        for subscription, status in [
            (old, "expired"),
            (paused, "expired"),
            (live, "active"),
        ]:
            subscription.refresh_from_db()
            assert subscription.status == status

    def test_old_attempts_are_pruned(self, subscribe, settings, monkeypatch):
        settings.WEBHOOK_RETENTION_DAYS = 30
        monkeypatch.setattr(services, "SWEEP_CHUNK", 3)
        delivery = make_delivery(subscribe("http://a.example/hooks"))
        now = timezone.now()
        for n in range(7):
            Attempt.objects.create(
                delivery=delivery, number=n, at=now - timedelta(days=31), outcome="ack"
            )
        recent = Attempt.objects.create(
            delivery=delivery, number=9, at=now - timedelta(days=29), outcome="ack"
        )
        assert services.prune_old_attempts() == 7
        assert list(Attempt.objects.all()) == [recent]


class TestTestDelivery:
    def test_it_creates_a_test_event_and_a_due_test_delivery(
        self, subscribe, kicked, django_capture_on_commit_callbacks
    ):
        subscription = subscribe("http://a.example/hooks", tracking_id="PARCEL1")
        with django_capture_on_commit_callbacks(execute=True):
            delivery = services.send_test_delivery(subscription=subscription)
        assert delivery.kind == "test"
        assert delivery.status == "pending"
        assert delivery.next_attempt_at <= timezone.now()
        event = delivery.event
        assert event.type == "TEST"
        assert event.payload == {"test": True}
        assert event.publisher_id == event.tenant_id == subscription.client_id
        assert event.resource_id == "PARCEL1"
        assert kicked == [{"count": 1, "countdowns": []}]


class TestRetryDelivery:
    @pytest.mark.parametrize("status", ["failed", "expired", "cancelled", "pending"])
    def test_it_makes_the_delivery_due_now_with_a_fresh_ttl(
        self, subscribe, kicked, status, django_capture_on_commit_callbacks
    ):
        delivery = make_delivery(
            subscribe("http://a.example/hooks"),
            status=status,
            backoff_step=4,
            attempts_count=5,
            next_attempt_at=timezone.now() + timedelta(hours=1),
            expires_at=timezone.now() - timedelta(hours=1),
        )
        with django_capture_on_commit_callbacks(execute=True):
            retried = services.retry_delivery(delivery_id=delivery.id)
        assert retried.status == "pending"
        assert retried.next_attempt_at <= timezone.now()
        assert retried.backoff_step == 0
        assert retried.attempts_count == 5  # the next attempt is number 6
        assert retried.expires_at > timezone.now() + timedelta(hours=23)
        assert kicked == [{"count": 1, "countdowns": []}]

    def test_a_delivery_in_flight_only_gets_a_fresh_ttl(self, subscribe, kicked):
        import uuid

        token = uuid.uuid4()
        later = timezone.now() + timedelta(seconds=50)
        delivery = make_delivery(
            subscribe("http://a.example/hooks"),
            lease_token=token,
            next_attempt_at=later,
        )
        retried = services.retry_delivery(delivery_id=delivery.id)
        assert (retried.lease_token, retried.next_attempt_at) == (token, later)
        assert retried.expires_at > timezone.now() + timedelta(hours=23)

    @pytest.mark.parametrize(
        ("status", "subscription_status", "message"),
        [
            ("succeeded", "active", "already succeeded"),
            ("held", "paused", "held"),
            ("failed", "paused", "paused"),
        ],
    )
    def test_it_refuses(self, subscribe, status, subscription_status, message):
        delivery = make_delivery(
            subscribe("http://a.example/hooks", status=subscription_status),
            status=status,
        )
        with pytest.raises(services.DeliveryNotRetriable, match=message):
            services.retry_delivery(delivery_id=delivery.id)
        assert reload(delivery).status == status

    def test_it_refuses_when_the_webhook_was_deleted(self, subscribe):
        subscription = subscribe("http://a.example/hooks")
        delivery = make_delivery(subscription, status="cancelled")
        subscription.delete()
        with pytest.raises(services.DeliveryNotRetriable, match="deleted"):
            services.retry_delivery(delivery_id=delivery.id)


def test_operators_can_close_a_breaker():
    from delivery.models import Breaker

    Breaker.objects.create(
        destination="http://a:80",
        consecutive_failures=9,
        open_until=timezone.now() + timedelta(minutes=1),
    )
    assert services.close_breakers(destinations=["http://a:80", "http://b:80"]) == 1
    row = Breaker.objects.get()
    assert (row.consecutive_failures, row.open_until) == (0, None)


@pytest.mark.django_db(transaction=True)
def test_holding_skips_deliveries_another_transaction_is_writing(subscribe):
    """A flush that pauses a subscription holds its pending deliveries while
    other workers' flushes may be writing some of them. Waiting for those rows
    while holding the subscription's row deadlocked: the other flush waits for
    that row to count its own failures. A row being written is in flight; its
    own recording, or its next claim, holds it."""
    subscription = subscribe("http://a.example/hooks")
    busy = make_delivery(subscription)
    idle = make_delivery(subscription)
    locked, release = threading.Event(), threading.Event()

    def write_busy_row():
        try:
            with transaction.atomic():
                Delivery.objects.select_for_update().get(pk=busy.pk)
                locked.set()
                release.wait(timeout=10)
        finally:
            connections.close_all()

    writer = threading.Thread(target=write_busy_row)
    writer.start()
    try:
        assert locked.wait(timeout=10)
        with transaction.atomic():
            with connection.cursor() as cursor:
                # Without SKIP LOCKED this waits for the writer: fail fast.
                cursor.execute("SET LOCAL lock_timeout = '3s'")
            held = services.hold_pending_deliveries(subscription_id=subscription.id)
    finally:
        release.set()
        writer.join(timeout=10)

    assert held == 1
    assert reload(idle).status == "held"
    assert reload(busy).status == "pending"
