"""The delivery engine in-process, against a real local receiver: claim a
batch, send it, record what happened."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from delivery.models import Attempt, Breaker, Delivery
from delivery.pipeline import engine
from delivery.pipeline.engine import deliver_due_batch
from delivery.sender import http
from events.models import EventType
from subscriptions.models import Subscription
from tests.support.factories import ClientFactory
from tests.support.ports import free_port
from tests.support.receiver import Reply
from tests.support.rows import SECRET, make_delivery, make_event, reload

pytestmark = pytest.mark.django_db


def attempts(delivery: Delivery) -> list[Attempt]:
    return list(delivery.attempts.order_by("number", "id"))


def test_an_acknowledged_delivery_succeeds(subscribe, receiver, kicked, sql_path):
    subscription = subscribe(receiver.url("/hooks"), consecutive_failures=4)
    delivery = make_delivery(subscription)

    report = deliver_due_batch(limit=10)

    assert (report.claimed, report.sent) == (1, 1)
    delivery = reload(delivery)
    assert delivery.status == "succeeded"
    assert delivery.attempts_count == 1
    assert delivery.delivered_at is not None
    assert delivery.next_attempt_at is None
    assert delivery.lease_token is None
    assert (delivery.last_status_code, delivery.last_error) == (200, "")
    (attempt,) = attempts(delivery)
    assert (attempt.number, attempt.outcome, attempt.status_code) == (1, "ack", 200)
    assert attempt.response_excerpt == "ok"
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0
    assert subscription.last_success_at is not None


def test_the_request_is_what_api_md_says_a_receiver_gets(subscribe, receiver, kicked):
    subscription = subscribe(
        receiver.url("/hooks"),
        content_type="application/vnd.acme+json",
        headers=[{"key": "x-protection-header", "value": "12345-67890"}],
    )
    event = make_event(
        subscription.client,
        type="STATUS_CHANGED",
        subtype="RELEASED",
        resource_id="TESTPACKAGEDELIVERED",
        user_id="u-42",
        resource_url="https://platform.example.com/api/parcels/TESTPACKAGEDELIVERED",
        payload={"status": "released"},
    )
    make_delivery(subscription, event=event)
    deliver_due_batch(limit=10)

    (request,) = receiver.requests()
    body = json.loads(request.body)
    assert body == {
        "id": str(event.id),
        "type": "STATUS_CHANGED",
        "subtype": "RELEASED",
        "resource_id": "TESTPACKAGEDELIVERED",
        "user_id": "u-42",
        "resource_url": "https://platform.example.com/api/parcels/TESTPACKAGEDELIVERED",
        "subscription_id": str(subscription.id),
        "payload": {"status": "released"},
        "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
    }
    headers = request.headers
    assert headers["content-type"] == "application/vnd.acme+json"
    assert headers["user-agent"] == "webhooks/1.0.0"
    assert headers["x-webhook-event"] == "STATUS_CHANGED"
    assert headers["webhook-id"] == str(event.id)
    assert abs(int(headers["webhook-timestamp"]) - timezone.now().timestamp()) < 5
    assert headers["x-protection-header"] == "12345-67890"
    assert headers["webhook-signature"].startswith("v1,")
    assert "authorization" not in headers
    # any Standard Webhooks library verifies it with the webhook's secret
    assert Webhook(SECRET).verify(request.body, headers) == body


def test_during_a_secret_rotation_both_secrets_sign(subscribe, receiver, kicked):
    old = "whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA=="
    subscription = subscribe(
        receiver.url("/hooks"),
        previous_secret=old,
        previous_secret_expires_at=timezone.now() + timedelta(hours=1),
    )
    make_delivery(subscription)
    deliver_due_batch(limit=10)

    (request,) = receiver.requests()
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET).verify(request.body, request.headers)
    Webhook(old).verify(request.body, request.headers)


def test_after_the_rotation_overlap_only_the_new_secret_signs(
    subscribe, receiver, kicked
):
    subscription = subscribe(
        receiver.url("/hooks"),
        previous_secret="whsec_" + "b2xkLXNlY3JldC1vbGQtc2VjcmV0LW9sZA==",
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1),
    )
    make_delivery(subscription)
    deliver_due_batch(limit=10)
    (request,) = receiver.requests()
    assert len(request.headers["webhook-signature"].split(" ")) == 1


def test_custom_headers_cannot_replace_the_services_own(subscribe, receiver, kicked):
    subscription = subscribe(
        receiver.url("/hooks"),
        headers=[
            {"key": "Webhook-Id", "value": "forged"},
            {"key": "user-agent", "value": "forged"},
            {"key": "X-Custom", "value": "kept"},
        ],
    )
    delivery = make_delivery(subscription)
    deliver_due_batch(limit=10)
    (request,) = receiver.requests()
    assert request.headers["webhook-id"] == str(delivery.event_id)
    assert request.headers["user-agent"].startswith("webhooks/")
    assert request.headers["x-custom"] == "kept"


def test_a_failure_is_retried_on_the_backoff_table_and_counted(
    subscribe, receiver, kicked, sql_path, django_capture_on_commit_callbacks
):
    receiver.script("/hooks", Reply(503, b"Service Unavailable"))
    subscription = subscribe(receiver.url("/hooks"))
    delivery = make_delivery(subscription)
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_batch(limit=10)

    delivery = reload(delivery)
    assert delivery.status == "pending"
    assert delivery.backoff_step == 1
    assert delivery.lease_token is None
    assert (delivery.last_status_code, delivery.last_error) == (503, "HTTP 503")
    wait = delivery.next_attempt_at - before
    assert timedelta(seconds=10) <= wait < timedelta(seconds=12)
    (attempt,) = attempts(delivery)
    assert (attempt.outcome, attempt.response_excerpt) == (
        "failure",
        "Service Unavailable",
    )
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 1
    assert subscription.last_failure_at is not None
    assert subscription.status == "active"
    # a wake-up is due in ~10 s (within WEBHOOK_COUNTDOWN_MAX), none now
    (kick,) = kicked
    assert kick["count"] == 0
    (countdown,) = kick["countdowns"]
    assert 9.5 < countdown <= 10.5


def test_retries_beyond_the_countdown_horizon_are_left_to_dispatch_due(
    subscribe, receiver, kicked, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_RETRY_SCHEDULE = (timedelta(hours=2),)
    receiver.script("/hooks", Reply(503))
    make_delivery(subscribe(receiver.url("/hooks")))
    with django_capture_on_commit_callbacks(execute=True):
        deliver_due_batch(limit=10)
    assert kicked == []


def test_no_response_is_a_failure_with_the_senders_error(subscribe, kicked):
    subscription = subscribe("http://127.0.0.1:9/hooks")  # discard port: refused
    delivery = make_delivery(subscription)
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert delivery.status == "pending"
    assert delivery.last_status_code is None
    assert "refused" in delivery.last_error
    (attempt,) = attempts(delivery)
    assert attempt.outcome == "failure"
    assert attempt.status_code is None
    assert "refused" in attempt.error


def test_consecutive_failures_pause_the_subscription_and_hold_its_deliveries(
    subscribe, receiver, kicked, settings
):
    settings.WEBHOOK_PAUSE_AFTER_FAILURES = 3
    receiver.script("/hooks", Reply(503))
    subscription = subscribe(receiver.url("/hooks"), consecutive_failures=1)
    failing = [make_delivery(subscription) for _ in range(2)]
    later = make_delivery(
        subscription, next_attempt_at=timezone.now() + timedelta(hours=1)
    )

    deliver_due_batch(limit=10)

    subscription.refresh_from_db()
    assert subscription.status == "paused"
    assert subscription.consecutive_failures == 3
    assert subscription.paused_reason == "3 consecutive failed attempts; last: HTTP 503"
    assert subscription.paused_at is not None
    # the failed ones are held rather than retried behind the pause, and so is
    # the one that was waiting
    assert {reload(d).status for d in [*failing, later]} == {"held"}


def test_an_ack_resets_the_failure_count(subscribe, receiver, kicked):
    subscription = subscribe(receiver.url("/hooks"), consecutive_failures=7)
    make_delivery(subscription)
    deliver_due_batch(limit=10)
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0


@pytest.mark.parametrize(
    ("status", "counted"),
    [(409, False), (429, False), (400, False), (404, True), (302, True)],
)
def test_only_failures_count_against_the_subscription(
    subscribe, receiver, kicked, status, counted
):
    receiver.script("/hooks", Reply(status))
    subscription = subscribe(receiver.url("/hooks"), consecutive_failures=2)
    make_delivery(subscription)
    deliver_due_batch(limit=10)
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == (3 if counted else 2)


def test_a_permanent_failure_is_never_retried(subscribe, receiver, kicked):
    receiver.script("/hooks", Reply(400, b"bad"))
    delivery = make_delivery(subscribe(receiver.url("/hooks")))
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert (delivery.status, delivery.next_attempt_at) == ("failed", None)
    assert deliver_due_batch(limit=10).claimed == 0


def test_a_conflict_is_retried_at_the_fixed_interval(
    subscribe, receiver, kicked, settings
):
    settings.WEBHOOK_CONFLICT_RETRY_INTERVAL = timedelta(seconds=45)
    receiver.script("/hooks", Reply(409))
    delivery = make_delivery(subscribe(receiver.url("/hooks")))
    before = timezone.now()
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert delivery.status == "pending"
    assert delivery.backoff_step == 0
    assert (
        timedelta(seconds=45)
        <= delivery.next_attempt_at - before
        < timedelta(seconds=47)
    )
    assert attempts(delivery)[0].outcome == "conflict_retry"


def test_a_throttled_delivery_waits_as_long_as_retry_after_asks(
    subscribe, receiver, kicked
):
    receiver.script("/hooks", Reply(429, headers={"Retry-After": "120"}))
    delivery = make_delivery(subscribe(receiver.url("/hooks")))
    before = timezone.now()
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert attempts(delivery)[0].outcome == "retry"
    assert (
        timedelta(seconds=120)
        <= delivery.next_attempt_at - before
        < timedelta(seconds=122)
    )


def test_a_delivery_of_a_paused_subscription_is_held_without_a_request(
    subscribe, receiver, kicked
):
    subscription = subscribe(receiver.url("/hooks"), status="paused")
    delivery = make_delivery(subscription)
    report = deliver_due_batch(limit=10)
    assert (report.claimed, report.sent, report.settled) == (1, 0, 1)
    delivery = reload(delivery)
    assert (delivery.status, delivery.attempts_count) == ("held", 0)
    assert receiver.requests() == []


def test_a_delivery_of_a_deleted_subscription_is_cancelled_without_a_request(
    subscribe, receiver, kicked
):
    subscription = subscribe(receiver.url("/hooks"))
    delivery = make_delivery(subscription)
    subscription.delete()
    deliver_due_batch(limit=10)
    assert reload(delivery).status == "cancelled"
    assert receiver.requests() == []


def test_a_delivery_past_its_ttl_expires_without_a_request(subscribe, receiver, kicked):
    now = timezone.now()
    delivery = make_delivery(
        subscribe(receiver.url("/hooks")),
        next_attempt_at=now - timedelta(hours=2),
        expires_at=now - timedelta(hours=1),
    )
    deliver_due_batch(limit=10)
    assert reload(delivery).status == "expired"
    assert receiver.requests() == []


def test_a_failure_whose_retry_would_be_after_the_ttl_expires_now(
    subscribe, receiver, kicked
):
    receiver.script("/hooks", Reply(503))
    delivery = make_delivery(
        subscribe(receiver.url("/hooks")),
        expires_at=timezone.now() + timedelta(seconds=5),
    )
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert (delivery.status, delivery.next_attempt_at) == ("expired", None)
    assert attempts(delivery)[0].outcome == "failure"


def test_a_test_delivery_is_sent_once_while_paused_and_not_counted(
    subscribe, receiver, kicked, settings
):
    settings.WEBHOOK_BREAKER_THRESHOLD = 1
    receiver.script("/hooks", Reply(503))
    subscription = subscribe(
        receiver.url("/hooks"), status="paused", consecutive_failures=9
    )
    delivery = make_delivery(subscription, kind="test")
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert (delivery.status, delivery.attempts_count) == ("failed", 1)
    assert len(receiver.requests()) == 1
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 9
    assert not Breaker.objects.exists()


def test_a_delivered_terminal_event_ends_its_tracking_subscription(
    subscribe, receiver, kicked
):
    EventType.objects.update_or_create(name="DELIVERED", defaults={"terminal": True})
    EventType.objects.update_or_create(name="IN_TRANSIT", defaults={"terminal": False})
    tracking = subscribe(receiver.url("/a"), tracking_id="PARCEL1")
    plain = subscribe(receiver.url("/b"))
    in_transit = make_event(tracking.client, type="IN_TRANSIT", resource_id="PARCEL1")
    make_delivery(tracking, event=in_transit)
    deliver_due_batch(limit=10)
    tracking.refresh_from_db()
    assert tracking.status == "active"

    delivered = make_event(tracking.client, type="DELIVERED", resource_id="PARCEL1")
    make_delivery(tracking, event=delivered)
    make_delivery(plain, event=delivered)
    deliver_due_batch(limit=10)
    tracking.refresh_from_db()
    plain.refresh_from_db()
    assert tracking.status == "expired"
    assert plain.status == "active"


def test_a_full_batch_enqueues_another_deliver_due(
    subscribe, receiver, kicked, django_capture_on_commit_callbacks
):
    subscription = subscribe(receiver.url("/hooks"))
    for _ in range(3):
        make_delivery(subscription)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_due_batch(limit=2).claimed == 2
    assert kicked == [{"count": 1, "countdowns": []}]
    kicked.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_due_batch(limit=2).claimed == 1
    assert kicked == []


def test_a_request_that_could_outlive_its_lease_is_released_unsent(
    subscribe, receiver, kicked, monkeypatch
):
    monkeypatch.setattr(engine, "_send_window", lambda: -1.0)
    delivery = make_delivery(subscribe(receiver.url("/hooks")))
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert (delivery.status, delivery.attempts_count) == ("pending", 0)
    assert delivery.lease_token is None
    assert delivery.next_attempt_at <= timezone.now()
    assert receiver.requests() == []


def test_a_request_still_queued_when_its_ttl_runs_out_expires_unsent(
    subscribe, receiver, kicked, monkeypatch
):
    delivery = make_delivery(
        subscribe(receiver.url("/hooks")),
        expires_at=timezone.now() + timedelta(milliseconds=300),
    )
    real_build = engine._build

    def slow_build(delivery, *, now):
        time.sleep(0.4)  # claimed before the TTL, reaching a sender after it
        return real_build(delivery, now=now)

    monkeypatch.setattr(engine, "_build", slow_build)
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert (delivery.status, delivery.attempts_count) == ("expired", 0)
    assert attempts(delivery) == []
    assert receiver.requests() == []


def test_a_sender_that_raises_is_recorded_as_a_failure(
    subscribe, receiver, kicked, monkeypatch
):
    def broken(request):
        raise RuntimeError("bug")

    monkeypatch.setattr(http, "send", broken)
    delivery = make_delivery(subscribe(receiver.url("/hooks")))
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert delivery.status == "pending"
    assert attempts(delivery)[0].error == "sender error: RuntimeError"


def test_deliveries_not_yet_due_are_not_claimed(subscribe, receiver, kicked):
    make_delivery(
        subscribe(receiver.url("/hooks")),
        next_attempt_at=timezone.now() + timedelta(minutes=1),
    )
    assert deliver_due_batch(limit=10).claimed == 0
    assert receiver.requests() == []


def test_a_slow_receiver_does_not_hold_back_the_others_results(
    subscribe, receiver, kicked, monkeypatch
):
    receiver.script("/slow", Reply(200, delay=1.0))
    slow = make_delivery(subscribe(receiver.url("/slow")))
    fast = make_delivery(subscribe(receiver.url("/fast")))
    recorded: list[set] = []
    real_record = engine.record

    def spy(items, **kwargs):
        recorded.append({item.delivery.id for item in items})
        return real_record(items, **kwargs)

    monkeypatch.setattr(engine, "record", spy)
    deliver_due_batch(limit=10)
    # the fast one is written in a flush of its own, before the slow one answers
    assert {fast.id} in recorded
    assert {slow.id} in recorded
    assert reload(slow).status == reload(fast).status == "succeeded"


class TestTheBreaker:
    @pytest.fixture(autouse=True)
    def _threshold(self, settings):
        settings.WEBHOOK_BREAKER_THRESHOLD = 2
        settings.WEBHOOK_BREAKER_COOLDOWN = timedelta(seconds=30)

    def make_due(self, deliveries):
        Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
            next_attempt_at=timezone.now()
        )

    def test_it_opens_skips_probes_and_closes(self, subscribe, receiver, kicked):
        receiver.script("/down", Reply(503))
        deliveries = [make_delivery(subscribe(receiver.url("/down"))) for _ in range(4)]
        destination = f"http://127.0.0.1:{receiver.port}"

        deliver_due_batch(limit=10)  # 4 failures: the breaker opens
        breaker_row = Breaker.objects.get(destination=destination)
        assert breaker_row.consecutive_failures == 4
        assert breaker_row.open_until > timezone.now()
        assert len(receiver.requests()) == 4

        self.make_due(deliveries)
        deliver_due_batch(limit=10)  # open: skipped, no request
        assert len(receiver.requests()) == 4
        for delivery in deliveries:
            delivery = reload(delivery)
            assert attempts(delivery)[-1].outcome == "skipped"
            assert delivery.backoff_step == 1  # no backoff step consumed
            assert delivery.attempts_count == 2
            assert delivery.next_attempt_at == breaker_row.open_until
            assert "circuit breaker open" in delivery.last_error
        subscription = reload(deliveries[0]).subscription
        assert subscription.consecutive_failures == 1  # a skip is not a failure

        # cooldown over: exactly one probe; it fails, the breaker opens again
        Breaker.objects.update(open_until=timezone.now() - timedelta(seconds=1))
        self.make_due(deliveries)
        deliver_due_batch(limit=10)
        assert len(receiver.requests()) == 5
        breaker_row.refresh_from_db()
        assert breaker_row.open_until > timezone.now()

        # cooldown over again and the receiver is back: the probe closes it
        receiver.script("/down", Reply(200))
        Breaker.objects.update(open_until=timezone.now() - timedelta(seconds=1))
        self.make_due(deliveries)
        deliver_due_batch(limit=10)
        breaker_row.refresh_from_db()
        assert (breaker_row.consecutive_failures, breaker_row.open_until) == (0, None)
        self.make_due([d for d in deliveries if reload(d).status == "pending"])
        deliver_due_batch(limit=10)
        assert {reload(d).status for d in deliveries} == {"succeeded"}

    def test_other_destinations_are_not_affected(self, subscribe, receiver, kicked):
        Breaker.objects.create(
            destination="http://127.0.0.1:9",
            consecutive_failures=9,
            open_until=timezone.now() + timedelta(minutes=1),
        )
        delivery = make_delivery(subscribe(receiver.url("/hooks")))
        deliver_due_batch(limit=10)
        assert reload(delivery).status == "succeeded"

    def test_a_tenants_404s_never_open_it_for_another_tenant(
        self, subscribe, receiver, kicked
    ):
        receiver.script("/gone", Reply(404))
        tenant_a = ClientFactory(name="tenant-a")
        gone = [
            make_delivery(subscribe(receiver.url("/gone"), client=tenant_a))
            for _ in range(6)
        ]
        deliver_due_batch(limit=10)
        assert all(attempts(d)[-1].outcome == "failure" for d in gone)
        assert not Breaker.objects.exists()

        tenant_b = ClientFactory(name="tenant-b")
        delivery = make_delivery(subscribe(receiver.url("/hooks"), client=tenant_b))
        deliver_due_batch(limit=10)
        assert reload(delivery).status == "succeeded"
        assert [a.outcome for a in attempts(reload(delivery))] == ["ack"]

    def test_our_own_failures_are_not_charged_to_the_destination(
        self, subscribe, receiver, kicked
    ):
        # Stored before the API checked content types: http.client refuses to
        # send a header that is not latin-1, so every attempt fails here.
        broken = [
            make_delivery(
                subscribe(receiver.url("/hooks"), content_type="application/json✓")
            )
            for _ in range(4)
        ]
        deliver_due_batch(limit=10)
        assert receiver.requests() == []
        for delivery in broken:
            (attempt,) = attempts(delivery)
            assert attempt.outcome == "failure"
            assert attempt.error.startswith("invalid request: cannot encode")
        assert not Breaker.objects.exists()

    @pytest.mark.ssrf_guard
    def test_a_blocked_destination_is_not_charged_to_it(
        self, subscribe, receiver, kicked
    ):
        blocked = [make_delivery(subscribe(receiver.url("/hooks"))) for _ in range(4)]
        deliver_due_batch(limit=10)
        assert all(attempts(d)[-1].error.startswith("blocked") for d in blocked)
        assert not Breaker.objects.exists()

    def test_a_host_refusing_connections_opens_it_for_everyone(self, subscribe, kicked):
        url = f"http://127.0.0.1:{free_port()}/hooks"  # nothing listens there
        for name in ("tenant-a", "tenant-b", "tenant-c"):
            make_delivery(subscribe(url, client=ClientFactory(name=name)))
        deliver_due_batch(limit=10)
        breaker_row = Breaker.objects.get()
        assert breaker_row.consecutive_failures == 3
        assert breaker_row.open_until > timezone.now()

        later = make_delivery(subscribe(url, client=ClientFactory(name="tenant-d")))
        deliver_due_batch(limit=10)
        assert [a.outcome for a in attempts(reload(later))] == ["skipped"]

    def test_a_probe_answered_with_a_404_closes_it(self, subscribe, receiver, kicked):
        receiver.script("/gone", Reply(404))
        Breaker.objects.create(
            destination=f"http://127.0.0.1:{receiver.port}",
            consecutive_failures=5,
            open_until=timezone.now() - timedelta(seconds=1),
        )
        make_delivery(subscribe(receiver.url("/gone")))
        deliver_due_batch(limit=10)
        breaker_row = Breaker.objects.get()
        # the host answered: it is up, whatever one tenant's path says
        assert (breaker_row.consecutive_failures, breaker_row.open_until) == (0, None)


@pytest.mark.django_db(transaction=True)
def test_a_result_whose_lease_was_lost_is_recorded_but_changes_nothing(
    subscribe, receiver, kicked, monkeypatch
):
    delivery = make_delivery(subscribe(receiver.url("/hooks")))
    real_send = http.send

    def send_while_someone_reclaims(request):
        result = real_send(request)
        # the lease ran out and another worker claimed the row meanwhile
        Delivery.objects.filter(pk=delivery.pk).update(lease_token=None)
        connection.close()
        return result

    monkeypatch.setattr(http, "send", send_while_someone_reclaims)
    deliver_due_batch(limit=10)
    delivery = reload(delivery)
    assert delivery.status == "pending"
    assert delivery.attempts_count == 0
    assert [a.outcome for a in attempts(delivery)] == ["ack"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_never_claim_the_same_delivery(subscribe, receiver, kicked):
    subscription = subscribe(receiver.url("/hooks"))
    event_ids = {str(make_delivery(subscription).event_id) for _ in range(60)}
    errors: list[BaseException] = []

    pending = Delivery.objects.filter(subscription=subscription, status="pending")
    deadline = time.monotonic() + 30

    def work() -> None:
        try:
            while pending.exists() and time.monotonic() < deadline:
                deliver_due_batch(limit=7)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    received = [r.headers["webhook-id"] for r in receiver.requests()]
    assert sorted(received) == sorted(event_ids)  # each exactly once
    assert set(
        Delivery.objects.filter(subscription=subscription).values_list(
            "status", flat=True
        )
    ) == {"succeeded"}


def test_the_http_pool_is_bounded_by_the_setting(settings, monkeypatch):
    monkeypatch.setattr(engine, "_pool", None)
    settings.WEBHOOK_HTTP_CONCURRENCY = 7
    assert engine.http_pool().max_workers == 7
    assert engine.http_pool() is engine.http_pool()
    engine.http_pool().shutdown()
    monkeypatch.setattr(engine, "_pool", None)


def test_subscriptions_status_values_match_what_the_engine_checks():
    assert Subscription.Status.PAUSED == "paused"


@pytest.mark.django_db(transaction=True)
def test_results_are_written_again_when_the_database_was_unreachable(
    subscribe, receiver, kicked, monkeypatch
):
    from django.db import OperationalError

    delivery = make_delivery(subscribe(receiver.url("/hooks")))
    real_record = engine.record
    calls: list[int] = []

    def flaky(items, **kwargs):
        calls.append(len(items))
        if calls == [0, 1]:  # the flush of the sent request (none settled early)
            raise OperationalError("server closed the connection unexpectedly")
        return real_record(items, **kwargs)

    monkeypatch.setattr(engine, "record", flaky)
    monkeypatch.setattr(engine, "RECORD_RETRY_PAUSE", 0.01)
    deliver_due_batch(limit=10)

    assert calls == [0, 1, 1]
    assert reload(delivery).status == "succeeded"
    assert [a.outcome for a in attempts(delivery)] == ["ack"]
    assert len(receiver.requests()) == 1


@pytest.mark.django_db(transaction=True)
def test_a_tenant_with_a_pool_of_slow_requests_waiting_does_not_hold_back_another(
    subscribe, receiver, kicked, settings, monkeypatch
):
    # Two sender threads (and one spare): tenant a's batch of 1 s requests
    # keeps both busy for 6 s, more than two dispatch intervals waiting.
    settings.WEBHOOK_HTTP_CONCURRENCY = 2
    monkeypatch.setattr(engine, "_pool", None)
    receiver.script("/slow", Reply(delay=1.0))
    noisy = subscribe(receiver.url("/slow"), client=ClientFactory(name="a"))
    for _ in range(30):
        make_delivery(noisy)
    first = threading.Thread(target=_batch_and_close, args=(12,))
    first.start()
    try:
        # Once a's first requests have ended (the third has started), the
        # pool knows they take 1 s: ten waiting on two threads is 5 s of work.
        deadline = time.monotonic() + 10
        while len(receiver.requests("/slow")) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        quiet = subscribe(receiver.url("/fast"), client=ClientFactory(name="b"))
        made = {make_delivery(quiet).id for _ in range(2)}
        report = deliver_due_batch(limit=12)
        # Only b's rows: a's 18 other due rows would only have waited here.
        assert report.claimed == 2
        assert set(
            Delivery.objects.filter(id__in=made).values_list("status", flat=True)
        ) == {"succeeded"}
        assert first.is_alive()  # a's batch is still sending
        assert len(receiver.requests("/fast")) == 2
    finally:
        first.join(timeout=30)
        engine.http_pool().shutdown()
        monkeypatch.setattr(engine, "_pool", None)
    # a's full batch asked for the next one at once; then, once a's queue got
    # shorter, the pool woke a worker for the rest.
    assert kicked == [{"count": 1, "countdowns": []}] * 2


def _batch_and_close(limit: int) -> None:
    try:
        deliver_due_batch(limit=limit)
    finally:
        connection.close()
