"""events.services.publish_event: idempotency, validation, payload size."""

import math
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery.models import Delivery
from events.models import Event, EventType
from events.services import EventTooLarge, InvalidEvent, publish_event, publish_events
from subscriptions.models import Subscription
from tests.support.factories import ClientFactory
from tests.support.rows import earlier
from webhooks_project import metrics


def test_it_stores_the_event_as_given(platform):
    acme = ClientFactory(name="acme")
    occurred = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

    result = publish_event(
        publisher=platform,
        type="STATUS_CHANGED",
        subtype="RELEASED",
        resource_id="DECL-1",
        resource_url="https://platform.example.com/api/declarations/DECL-1",
        user_id="u-42",
        tenant="acme",
        payload={"status": "released", "lines": [1, 2]},
        occurred_at=occurred,
        idempotency_key="evt-1",
    )

    event = Event.objects.get(pk=result.event.pk)
    assert event.publisher == platform
    assert event.tenant == acme
    assert (event.type, event.subtype) == ("STATUS_CHANGED", "RELEASED")
    assert event.resource_id == "DECL-1"
    assert event.resource_url.endswith("/DECL-1")
    assert event.user_id == "u-42"
    assert event.payload == {"status": "released", "lines": [1, 2]}
    assert event.occurred_at == occurred
    assert event.idempotency_key == "evt-1"
    assert abs(event.created_at - timezone.now()) < timedelta(seconds=5)


def test_occurred_at_defaults_to_the_publication_time(platform):
    result = publish_event(publisher=platform, type="DELIVERED", payload={})

    assert result.event.occurred_at == result.event.created_at


def test_publishing_the_same_key_twice_creates_one_event_and_one_fan_out(
    subscribe, platform, woken, django_capture_on_commit_callbacks
):
    subscribe("acme", created_at=earlier())
    subscribe("acme", created_at=earlier())

    with django_capture_on_commit_callbacks(execute=True):
        first = publish_event(
            publisher=platform,
            type="DELIVERED",
            tenant="acme",
            payload={"n": 1},
            idempotency_key="k-1",
        )
    subscribe("acme", created_at=earlier())
    with django_capture_on_commit_callbacks(execute=True):
        second = publish_event(
            publisher=platform,
            type="DELIVERED",
            tenant="acme",
            payload={"n": 2},
            idempotency_key="k-1",
        )

    assert (first.created, first.deliveries) == (True, 2)
    assert (second.created, second.deliveries) == (False, 2)
    assert second.event.pk == first.event.pk
    assert second.event.payload == {"n": 1}
    assert Event.objects.count() == 1
    assert Delivery.objects.count() == 2
    assert woken == [2]


def test_a_repeat_is_recognised_before_its_body_is_validated(platform):
    publish_event(
        publisher=platform, type="DELIVERED", payload={}, idempotency_key="k-1"
    )

    again = publish_event(
        publisher=platform, type="NO_SUCH_TYPE", payload={}, idempotency_key="k-1"
    )

    assert again.created is False


def test_idempotency_keys_are_per_publisher(platform):
    other_publisher = ClientFactory(name="carrier")

    first = publish_event(
        publisher=platform, type="DELIVERED", payload={}, idempotency_key="k-1"
    )
    second = publish_event(
        publisher=other_publisher, type="DELIVERED", payload={}, idempotency_key="k-1"
    )

    assert first.created and second.created
    assert first.event.pk != second.event.pk


def test_events_without_a_key_are_never_deduplicated(platform):
    first = publish_event(publisher=platform, type="DELIVERED", payload={})
    second = publish_event(publisher=platform, type="DELIVERED", payload={})

    assert first.event.pk != second.event.pk
    assert Event.objects.count() == 2


def test_a_repeat_inside_the_callers_transaction_leaves_it_usable(platform):
    with transaction.atomic():
        publish_event(
            publisher=platform, type="DELIVERED", payload={}, idempotency_key="k-1"
        )
        again = publish_event(
            publisher=platform, type="DELIVERED", payload={}, idempotency_key="k-1"
        )
        assert again.created is False
        assert Event.objects.count() == 1


INVALID = [
    pytest.param({"type": "NO_SUCH_TYPE"}, "type", id="unknown type"),
    pytest.param({"type": "TEST"}, "type", id="the reserved TEST type"),
    pytest.param(
        {"type": "STATUS_CHANGED", "subtype": "EATEN"},
        "subtype",
        id="subtype not in the catalogue",
    ),
    pytest.param(
        {"type": "DELIVERED", "subtype": "RELEASED"},
        "subtype",
        id="subtype of a type without subtypes",
    ),
    pytest.param({"tenant": "nobody"}, "tenant", id="unknown tenant"),
    pytest.param({"payload": ["a", "list"]}, "payload", id="payload not an object"),
    pytest.param({"payload": "text"}, "payload", id="payload a string"),
    pytest.param({"payload": {"x": math.nan}}, "payload", id="payload with NaN"),
    pytest.param({"payload": {"x": object()}}, "payload", id="payload not JSON"),
    pytest.param({"payload": {"x": "a\x00b"}}, "payload", id="payload with NUL"),
    pytest.param({"resource_id": "r" * 129}, "resource_id", id="long resource_id"),
    pytest.param({"user_id": "u" * 129}, "user_id", id="long user_id"),
    pytest.param(
        {"resource_url": "https://x.example/" + "p" * 500},
        "resource_url",
        id="long resource_url",
    ),
    pytest.param({"idempotency_key": "k" * 65}, "id", id="long idempotency key"),
    pytest.param({"resource_id": "a\x00b"}, "resource_id", id="NUL in resource_id"),
]


@pytest.mark.parametrize(("overrides", "field"), INVALID)
def test_invalid_input_raises_invalid_event_and_writes_nothing(
    platform, overrides, field
):
    arguments = {"publisher": platform, "type": "DELIVERED", "payload": {}}

    with pytest.raises(InvalidEvent) as raised:
        publish_event(**{**arguments, **overrides})

    assert raised.value.field == field
    assert raised.value.message
    assert Event.objects.count() == 0


def test_a_payload_with_an_escaped_backslash_before_u0000_is_fine(platform):
    result = publish_event(
        publisher=platform, type="DELIVERED", payload={"path": "C:\\u0000"}
    )

    assert Event.objects.get(pk=result.event.pk).payload == {"path": "C:\\u0000"}


def test_a_payload_over_the_limit_raises_event_too_large(platform, settings):
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 100
    # {"x":"…"} is 8 bytes of JSON around the value.
    publish_event(publisher=platform, type="DELIVERED", payload={"x": "a" * 92})

    with pytest.raises(EventTooLarge) as raised:
        publish_event(publisher=platform, type="DELIVERED", payload={"x": "a" * 93})

    assert raised.value.field == "payload"
    assert Event.objects.count() == 1


def test_the_payload_limit_counts_utf8_bytes(platform, settings):
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 100

    with pytest.raises(EventTooLarge):
        # 47 two-byte characters: 94 bytes, plus 8 of JSON around them.
        publish_event(publisher=platform, type="DELIVERED", payload={"x": "é" * 47})


@pytest.mark.django_db(transaction=True)
def test_two_racing_publishes_with_one_key_create_one_event(subscribe):
    """The second publish's INSERT meets the first's uncommitted row and blocks
    on the unique index; once the first commits it returns that event."""
    # An earlier transactional test may have flushed the seeded catalogue.
    EventType.objects.get_or_create(name="DELIVERED")
    platform = ClientFactory(name="platform")
    for _ in range(3):
        subscribe("acme", created_at=earlier())
    first_inserted = threading.Event()
    results = {}
    errors = []

    def publish(name: str):
        return publish_event(
            publisher=platform,
            type="DELIVERED",
            tenant="acme",
            payload={"by": name},
            idempotency_key="race-1",
        )

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = publish("first")
                # Its event and deliveries are written, not committed: hold
                # the transaction open until the second publish waits on it.
                first_inserted.set()
                _wait_for_a_blocked_insert(deadline=time.monotonic() + 10)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            results["second"] = publish("second")
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    thread_1 = threading.Thread(target=first)
    thread_2 = threading.Thread(target=second)
    thread_1.start()
    assert first_inserted.wait(timeout=10)
    thread_2.start()
    thread_1.join(timeout=20)
    thread_2.join(timeout=20)

    assert not thread_1.is_alive() and not thread_2.is_alive()
    assert errors == []
    assert results["first"].created is True
    assert results["second"].created is False
    assert results["second"].event.pk == results["first"].event.pk
    assert results["second"].deliveries == 3
    assert Event.objects.count() == 1
    assert Delivery.objects.count() == 3


def _wait_for_a_blocked_insert(*, deadline: float) -> None:
    """Return once another session waits on a lock (the racing INSERT)."""
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # pg_stat_activity is a snapshot per transaction: refresh it.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second publish never blocked on the first")


def test_published_events_are_counted_when_they_commit_and_repeats_are_not(
    platform, django_capture_on_commit_callbacks
):
    def published() -> float:
        registry = metrics.scrape_registry()
        return registry.get_sample_value("webhook_events_published_total") or 0.0

    before = published()
    with django_capture_on_commit_callbacks(execute=False) as pending:
        publish_events(
            publisher=platform,
            events=[
                {"type": "DELIVERED", "payload": {"n": n}, "idempotency_key": f"k{n}"}
                for n in range(3)
            ],
        )
    assert published() == before
    for callback in pending:
        callback()
    assert published() == before + 3

    with django_capture_on_commit_callbacks(execute=True):
        publish_event(
            publisher=platform, type="DELIVERED", payload={}, idempotency_key="k1"
        )
    assert published() == before + 3


# --- terminal events end trackingId webhooks as they are published (seed 003) --


def test_a_terminal_event_ends_the_tracking_webhooks_it_reaches_when_published(
    platform, subscribe, sql_path
):
    acme = ClientFactory(name="acme")
    tracking = subscribe(acme, ["DELIVERED"], tracking_id="PKG1", created_at=earlier())
    paused = subscribe(
        acme, ["DELIVERED"], tracking_id="PKG1", status="paused", created_at=earlier()
    )
    other_parcel = subscribe(
        acme, ["DELIVERED"], tracking_id="PKG2", created_at=earlier()
    )
    everything = subscribe(acme, ["DELIVERED"], created_at=earlier())
    not_for_it = subscribe(
        acme, ["IN_TRANSIT"], tracking_id="PKG1", created_at=earlier()
    )

    result = publish_event(
        publisher=platform,
        type="DELIVERED",
        tenant="acme",
        resource_id="PKG1",
        payload={},
    )

    assert result.deliveries == 3
    statuses = {
        name: type(sub).objects.get(pk=sub.pk).status
        for name, sub in (
            ("tracking", tracking),
            ("paused", paused),
            ("other_parcel", other_parcel),
            ("everything", everything),
            ("not_for_it", not_for_it),
        )
    }
    # A paused one keeps its held delivery; the worker ends it once it was
    # resumed and acknowledged the event.
    assert statuses == {
        "tracking": "expired",
        "paused": "paused",
        "other_parcel": "active",
        "everything": "active",
        "not_for_it": "active",
    }
    # The ended webhook's delivery of the terminal event is still to be sent.
    delivery = Delivery.objects.get(event=result.event, subscription=tracking)
    assert (delivery.status, delivery.next_attempt_at) == (
        "pending",
        result.event.created_at,
    )


def test_a_non_terminal_event_ends_nothing(platform, subscribe, sql_path):
    EventType.objects.filter(name="IN_TRANSIT").update(terminal=False)
    tracking = subscribe(
        "acme", ["IN_TRANSIT"], tracking_id="PKG1", created_at=earlier()
    )

    publish_event(
        publisher=platform,
        type="IN_TRANSIT",
        tenant="acme",
        resource_id="PKG1",
        payload={},
    )

    tracking.refresh_from_db()
    assert tracking.status == "active"


def test_a_terminal_event_is_still_one_statement(platform, subscribe):
    acme = ClientFactory(name="acme")
    for parcel in ("PKG1", "PKG2"):
        subscribe(acme, ["DELIVERED"], tracking_id=parcel, created_at=earlier())
    # The same shape once before: the type and tenant are cached, the
    # statement prepared on this connection.
    publish_event(
        publisher=platform,
        type="DELIVERED",
        tenant="acme",
        resource_id="PKG1",
        payload={},
    )

    with CaptureQueriesContext(connection) as queries:
        result = publish_event(
            publisher=platform,
            type="DELIVERED",
            tenant="acme",
            resource_id="PKG2",
            payload={},
        )

    assert [query["sql"].split()[0] for query in queries] == ["EXECUTE"]
    assert result.deliveries == 1
    ended = Subscription.objects.get(tracking_id="PKG2")
    assert ended.status == "expired"
