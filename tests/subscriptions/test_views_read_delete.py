from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Delivery
from subscriptions.models import Subscription, SubscriptionFilter
from tests.support.api import (
    CLIENT_SECRET,
    HEADER_VALUE,
    assert_envelope,
    create,
    make_delivery,
)
from tests.support.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def _lapse(webhook_id: str) -> None:
    """Past its expiry but not yet swept: its row still says active."""
    Subscription.objects.filter(pk=webhook_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def _create_many(api, body, tracking_ids):
    ids = []
    for tracking_id in tracking_ids:
        body["trackingId"] = tracking_id
        response = create(api, body)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


# --- list ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/webhooks/", "/api/v1/webhooks"])
def test_the_list_shows_the_clients_live_webhooks_newest_first(
    api, other_api, body, path
):
    ids = _create_many(api, body, ["A", "B", "C", "D"])
    create(other_api, body)
    Subscription.objects.filter(pk=ids[1]).update(status="expired")
    _lapse(ids[2])

    response = api.get(path)

    assert response.status_code == 200
    webhooks = response.json()
    assert [w["id"] for w in webhooks] == [ids[3], ids[0]]
    assert all(w["authenticator"] == "acme" for w in webhooks)
    assert all("secret" not in w for w in webhooks)


def test_the_list_never_shows_secrets(api, body):
    ids = _create_many(api, body, ["A", "B"])
    signing_secret = Subscription.objects.get(pk=ids[0]).secret

    response = api.get("/api/v1/webhooks/")

    assert len(response.json()) == 2
    for secret in (HEADER_VALUE, CLIENT_SECRET, signing_secret):
        assert secret.encode() not in response.content


def test_limit_keeps_the_newest(api, body):
    ids = _create_many(api, body, ["A", "B", "C"])

    response = api.get("/api/v1/webhooks/?limit=2")

    assert [w["id"] for w in response.json()] == [ids[2], ids[1]]


def _bulk_webhooks(client, count: int) -> None:
    now = timezone.now()
    Subscription.objects.bulk_create(
        [
            SubscriptionFactory.build(
                client=client,
                created_at=now - timedelta(seconds=i),
                expires_at=now + timedelta(days=1),
            )
            for i in range(count)
        ],
        batch_size=2000,
    )


def test_the_default_limit_is_ten_thousand(api, settings):
    # With pages larger than the contract's default limit, the limit decides.
    settings.WEBHOOK_LIST_PAGE_SIZE = 20_000
    _bulk_webhooks(api.client_obj, 10_001)

    response = api.get("/api/v1/webhooks/")

    assert response.status_code == 200
    assert len(response.json()) == 10_000
    assert "Link" in response


def test_the_default_page_is_a_thousand_with_a_link_to_the_next(api):
    _bulk_webhooks(api.client_obj, 1001)

    response = api.get("/api/v1/webhooks/")

    assert response.status_code == 200
    assert len(response.json()) == 1000
    assert 'rel="next"' in response["Link"]
    assert len(api.get(response["Link"][1:].split(">")[0]).json()) == 1


def test_the_maximum_limit_is_accepted(api, body):
    _create_many(api, body, ["A"])

    response = api.get("/api/v1/webhooks/?limit=150000")

    assert response.status_code == 200 and len(response.json()) == 1


@pytest.mark.parametrize("limit", ["150001", "0", "-1", "abc", "1.5", "1e3"])
def test_a_bad_limit_is_a_400(api, limit):
    payload = assert_envelope(api.get(f"/api/v1/webhooks/?limit={limit}"), 400)

    assert "limit" in payload["errors"]


def test_the_status_filter(api, body):
    ids = _create_many(api, body, ["A", "B", "C", "D"])
    Subscription.objects.filter(pk=ids[1]).update(status="paused", paused_reason="x")
    Subscription.objects.filter(pk=ids[2]).update(status="expired")
    _lapse(ids[3])

    def listed(status):
        response = api.get(f"/api/v1/webhooks/?status={status}")
        assert response.status_code == 200
        return [w["id"] for w in response.json()]

    assert listed("active") == [ids[0]]
    assert listed("paused") == [ids[1]]
    assert listed("expired") == [ids[3], ids[2]]
    assert {
        w["status"] for w in api.get("/api/v1/webhooks/?status=expired").json()
    } == {"expired"}


def test_a_bad_status_filter_is_a_400(api):
    payload = assert_envelope(api.get("/api/v1/webhooks/?status=bogus"), 400)

    assert "status" in payload["errors"]


# --- get ----------------------------------------------------------------------


def test_get_returns_the_webhook_object_without_secrets(api, body):
    created = create(api, body).json()

    response = api.get(f"/api/v1/webhooks/{created['id']}")

    assert response.status_code == 200
    expected = {k: v for k, v in created.items() if k != "secret"}
    assert response.json() == expected
    for secret in (HEADER_VALUE, CLIENT_SECRET, created["secret"]):
        assert secret.encode() not in response.content


def test_a_paused_webhook_shows_its_reason(api, body):
    created = create(api, body).json()
    Subscription.objects.filter(pk=created["id"]).update(
        status="paused", paused_reason="10 consecutive failures"
    )

    webhook = api.get(f"/api/v1/webhooks/{created['id']}").json()

    assert webhook["status"] == "paused"
    assert webhook["paused_reason"] == "10 consecutive failures"


def test_a_webhook_past_its_expiry_reads_as_expired_before_the_sweep(api, body):
    created = create(api, body).json()
    _lapse(created["id"])

    webhook = api.get(f"/api/v1/webhooks/{created['id']}").json()

    assert webhook["status"] == "expired"


def test_an_unknown_id_is_a_404(api):
    assert_envelope(
        api.get("/api/v1/webhooks/00000000-0000-4000-8000-000000000000"), 404
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/webhooks/not-a-uuid",
        "/api/v1/webhooks/1234",
        "/api/v1/webhooks/not-a-uuid/resume",
        "/api/v1/webhooks/not-a-uuid/rotate-secret",
    ],
)
def test_a_non_uuid_id_is_a_404_in_the_envelope(api, path):
    assert_envelope(api.get(path), 404)
    assert_envelope(api.post(path), 404)
    assert_envelope(api.delete(path), 404)


# --- delete -------------------------------------------------------------------


def test_delete_answers_204_and_removes_the_webhook_and_its_filters(api, body):
    created = create(api, body).json()

    response = api.delete(f"/api/v1/webhooks/{created['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert not Subscription.objects.filter(pk=created["id"]).exists()
    assert not SubscriptionFilter.objects.filter(subscription_id=created["id"]).exists()
    assert_envelope(api.get(f"/api/v1/webhooks/{created['id']}"), 404)
    assert_envelope(api.delete(f"/api/v1/webhooks/{created['id']}"), 404)


def test_delete_with_include_webhook_answers_the_deleted_object(api, body):
    created = create(api, body).json()

    response = api.delete(f"/api/v1/webhooks/{created['id']}?includeWebhook=true")

    assert response.status_code == 200
    assert response.json() == {k: v for k, v in created.items() if k != "secret"}
    for secret in (HEADER_VALUE, CLIENT_SECRET, created["secret"]):
        assert secret.encode() not in response.content
    assert not Subscription.objects.filter(pk=created["id"]).exists()


def test_delete_with_include_webhook_false_answers_204(api, body):
    created = create(api, body).json()

    response = api.delete(f"/api/v1/webhooks/{created['id']}?includeWebhook=false")

    assert response.status_code == 204


def test_a_bad_include_webhook_is_a_400_and_deletes_nothing(api, body):
    created = create(api, body).json()

    payload = assert_envelope(
        api.delete(f"/api/v1/webhooks/{created['id']}?includeWebhook=maybe"), 400
    )

    assert "includeWebhook" in payload["errors"]
    assert Subscription.objects.filter(pk=created["id"]).exists()


def test_delete_cancels_pending_and_held_deliveries_and_keeps_finished_ones(api, body):
    created = create(api, body).json()
    sub = Subscription.objects.get(pk=created["id"])
    pending = make_delivery(sub, "pending")
    held = make_delivery(sub, "held")
    succeeded = make_delivery(sub, "succeeded")

    assert api.delete(f"/api/v1/webhooks/{created['id']}").status_code == 204

    pending.refresh_from_db()
    held.refresh_from_db()
    succeeded.refresh_from_db()
    assert pending.status == held.status == Delivery.Status.CANCELLED
    assert pending.next_attempt_at is None
    assert succeeded.status == Delivery.Status.SUCCEEDED
    # The event log survives the subscription.
    assert succeeded.subscription_id is None
