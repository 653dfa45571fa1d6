from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from delivery.models import Delivery
from subscriptions.models import Subscription
from tests.support.api import (
    CLIENT_SECRET,
    HEADER_VALUE,
    assert_envelope,
    create,
    make_delivery,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def paused(api, body) -> Subscription:
    webhook = create(api, body).json()
    Subscription.objects.filter(pk=webhook["id"]).update(
        status="paused",
        paused_reason="10 consecutive failures",
        paused_at=timezone.now(),
        consecutive_failures=10,
    )
    return Subscription.objects.get(pk=webhook["id"])


# --- resume -------------------------------------------------------------------


def test_resume_reactivates_a_paused_webhook(api, paused):
    response = api.post(f"/api/v1/webhooks/{paused.pk}/resume")

    assert response.status_code == 200, response.content
    webhook = response.json()
    assert webhook["id"] == str(paused.pk)
    assert webhook["status"] == "active"
    assert "paused_reason" not in webhook and "secret" not in webhook
    for secret in (HEADER_VALUE, CLIENT_SECRET, paused.secret):
        assert secret.encode() not in response.content
    paused.refresh_from_db()
    assert paused.status == "active"
    assert paused.consecutive_failures == 0
    assert paused.paused_reason == "" and paused.paused_at is None


def test_resume_releases_held_deliveries_and_expires_those_past_their_ttl(api, paused):
    held = make_delivery(paused, "held")
    stale = make_delivery(paused, "held", expires_at=timezone.now() - timedelta(1))
    done = make_delivery(paused, "succeeded")
    before = timezone.now()

    assert api.post(f"/api/v1/webhooks/{paused.pk}/resume").status_code == 200

    held.refresh_from_db()
    stale.refresh_from_db()
    done.refresh_from_db()
    assert held.status == Delivery.Status.PENDING
    assert before <= held.next_attempt_at <= timezone.now()
    assert stale.status == Delivery.Status.EXPIRED
    assert done.status == Delivery.Status.SUCCEEDED


def test_resume_of_an_active_webhook_is_a_409(api, body):
    webhook = create(api, body).json()

    assert_envelope(api.post(f"/api/v1/webhooks/{webhook['id']}/resume"), 409)


def test_resume_of_a_webhook_past_its_expiry_is_a_409(api, paused):
    Subscription.objects.filter(pk=paused.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    held = make_delivery(paused, "held")

    assert_envelope(api.post(f"/api/v1/webhooks/{paused.pk}/resume"), 409)

    held.refresh_from_db()
    assert held.status == Delivery.Status.HELD
    assert Subscription.objects.get(pk=paused.pk).status == "paused"


def test_resume_ignores_a_body(api, paused):
    response = api.post(f"/api/v1/webhooks/{paused.pk}/resume", {"x": 1}, format="json")

    assert response.status_code == 200


# --- rotate-secret --------------------------------------------------------------


def test_rotate_secret_returns_only_the_new_secret(api, body):
    created = create(api, body).json()
    before = timezone.now()

    response = api.post(f"/api/v1/webhooks/{created['id']}/rotate-secret")

    assert response.status_code == 200
    payload = response.json()
    assert set(payload) == {"secret"}
    assert payload["secret"].startswith("whsec_")
    assert payload["secret"] != created["secret"]
    sub = Subscription.objects.get(pk=created["id"])
    assert sub.secret == payload["secret"]
    assert sub.previous_secret == created["secret"]
    overlap = settings.WEBHOOK_SECRET_ROTATION_OVERLAP
    assert before + overlap <= sub.previous_secret_expires_at
    assert sub.previous_secret_expires_at <= timezone.now() + overlap


def test_the_rotated_secret_is_not_shown_afterwards(api, body):
    created = create(api, body).json()
    secret = api.post(f"/api/v1/webhooks/{created['id']}/rotate-secret").json()[
        "secret"
    ]

    for response in (
        api.get(f"/api/v1/webhooks/{created['id']}"),
        api.get("/api/v1/webhooks/"),
    ):
        assert secret.encode() not in response.content
        assert created["secret"].encode() not in response.content


def test_rotating_twice_keeps_only_the_last_previous_secret(api, body):
    created = create(api, body).json()
    url = f"/api/v1/webhooks/{created['id']}/rotate-secret"
    second = api.post(url).json()["secret"]

    third = api.post(url).json()["secret"]

    sub = Subscription.objects.get(pk=created["id"])
    assert (sub.secret, sub.previous_secret) == (third, second)
