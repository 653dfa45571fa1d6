"""Delivery services that other apps, tasks and the API call."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from delivery import services
from delivery.models import Delivery
from subscriptions.models import Subscription, SubscriptionFilter
from tests.support.factories import ClientFactory
from tests.support.rows import make_delivery, make_event, reload

pytestmark = pytest.mark.django_db


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
