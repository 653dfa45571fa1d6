"""WEBHOOK_MAX_WEBHOOKS_PER_CLIENT: live webhooks per client, on single and
batch create, all or nothing, and race-safe."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from subscriptions import services
from subscriptions.models import Subscription
from tests.support.api import assert_envelope, create, row_counts
from tests.support.factories import ClientFactory, SubscriptionFactory
from tests.support.waiting import wait_until

BATCH = "/batch/api/v1/webhooks"


@pytest.fixture
def quota(settings):
    settings.WEBHOOK_MAX_WEBHOOKS_PER_CLIENT = 3
    return 3


def _tracked(body: dict, tracking_id: str) -> dict:
    return {**body, "trackingId": tracking_id}


def _batch(body: dict, tracking_ids: list[str]) -> dict:
    batch = {k: v for k, v in body.items() if k != "trackingId"}
    return {**batch, "trackingIds": tracking_ids}


def _assert_over_quota(response) -> dict:
    payload = assert_envelope(response, 409)
    assert "WEBHOOK_MAX_WEBHOOKS_PER_CLIENT" in payload["reason"]
    assert "quota" in payload["reason"]
    return payload


@pytest.mark.django_db
def test_a_single_create_past_the_quota_is_a_409_naming_it(api, body, quota):
    for n in range(quota):
        assert create(api, _tracked(body, f"T{n}")).status_code == 201

    response = create(api, _tracked(body, "ONE-TOO-MANY"))

    payload = _assert_over_quota(response)
    assert "has 3 live webhooks" in payload["reason"]
    assert row_counts() == (3, 9)


@pytest.mark.django_db
def test_a_batch_that_does_not_fit_writes_nothing(api, body, quota):
    assert create(api, _tracked(body, "FIRST")).status_code == 201

    response = create(api, _batch(body, ["A", "B", "C"]), BATCH)

    payload = _assert_over_quota(response)
    assert "3 more would pass its quota of 3" in payload["reason"]
    assert row_counts() == (1, 3)
    # What fits is accepted.
    assert create(api, _batch(body, ["A", "B"]), BATCH).status_code == 201
    assert row_counts() == (3, 9)


@pytest.mark.django_db
def test_a_full_batch_of_a_thousand_past_the_quota_writes_nothing(api, body, settings):
    settings.WEBHOOK_MAX_WEBHOOKS_PER_CLIENT = 1000
    assert create(api, _tracked(body, "FIRST")).status_code == 201

    response = create(api, _batch(body, [f"T{i:04d}" for i in range(1000)]), BATCH)

    _assert_over_quota(response)
    assert row_counts() == (1, 3)


@pytest.mark.django_db
def test_lapsed_and_other_tenants_webhooks_do_not_count(api, body, quota):
    acme = api.client_obj
    SubscriptionFactory(client=acme, status=Subscription.Status.EXPIRED)
    SubscriptionFactory(client=acme, expires_at=timezone.now() - timedelta(seconds=1))
    for _ in range(quota):
        SubscriptionFactory(client=ClientFactory(name="globex"))
    SubscriptionFactory(client=acme, status=Subscription.Status.PAUSED)

    # One paused webhook counts; two more fit.
    assert create(api, _batch(body, ["A", "B"]), BATCH).status_code == 201
    _assert_over_quota(create(api, _tracked(body, "C")))


@pytest.mark.django_db
def test_deleting_a_webhook_frees_its_slot(api, body, quota):
    ids = [create(api, _tracked(body, f"T{n}")).json()["id"] for n in range(quota)]
    _assert_over_quota(create(api, _tracked(body, "NEXT")))

    assert api.delete(f"/api/v1/webhooks/{ids[0]}").status_code == 204

    assert create(api, _tracked(body, "NEXT")).status_code == 201


def _someone_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        # pg_stat_activity is a snapshot per transaction: refresh it.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creates_cannot_both_take_the_last_slot(settings):
    """The first create holds its transaction open after its count; the
    second, on its own connection, must wait for it and then count its row.
    Counting without the client row's lock, both would see one free slot."""
    settings.WEBHOOK_MAX_WEBHOOKS_PER_CLIENT = 1
    acme = ClientFactory(name="acme")
    config = services.WebhookConfig(
        url="https://example.com/hooks", event_groups=["DELIVERED"]
    )
    first_created, release_first = threading.Event(), threading.Event()
    outcomes: dict[str, object] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                services.create_subscription(
                    client=acme, config=config, tracking_id="FIRST"
                )
                first_created.set()
                release_first.wait(timeout=20)
            outcomes["first"] = "created"
        except Exception as exc:  # reported by the assertions below
            outcomes["first"] = exc
        finally:
            connections.close_all()

    def second() -> None:
        try:
            services.create_subscription(
                client=acme, config=config, tracking_id="SECOND"
            )
            outcomes["second"] = "created"
        except Exception as exc:  # reported by the assertions below
            outcomes["second"] = exc
        finally:
            connections.close_all()

    thread_1 = threading.Thread(target=first)
    thread_2 = threading.Thread(target=second)
    thread_1.start()
    try:
        assert first_created.wait(timeout=10)
        thread_2.start()
        wait_until(_someone_waits_on_a_lock, message="the second create to block")
        assert "second" not in outcomes
    finally:
        release_first.set()
        thread_1.join(timeout=20)
        if thread_2.ident:  # started
            thread_2.join(timeout=20)

    assert outcomes["first"] == "created"
    assert isinstance(outcomes["second"], services.WebhookQuotaExceeded)
    assert (outcomes["second"].live, outcomes["second"].quota) == (1, 1)
    assert list(Subscription.objects.values_list("tracking_id", flat=True)) == ["FIRST"]
