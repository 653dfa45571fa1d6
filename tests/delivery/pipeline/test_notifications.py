"""Writing operational notifications: to whom, once per transition, and
never about a notification's own delivery."""

import pytest

from delivery.models import Delivery
from delivery.pipeline.engine import deliver_due_batch
from subscriptions import services
from subscriptions.models import Client
from tests.support.receiver import Reply
from tests.support.rows import make_delivery, reload

pytestmark = pytest.mark.django_db


def _notices():
    return list(
        Delivery.objects.filter(kind__in=Delivery.NOTIFICATIONS)
        .order_by("kind")
        .values_list("kind", "event__type")
    )


def test_a_transition_notifies_the_operator_and_the_client_once(
    subscribe, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_OPERATIONAL_URL = "https://ops.example.com/hooks"
    webhook = subscribe("https://receiver.example.com/hooks")
    Client.objects.filter(pk=webhook.client_id).update(
        notification_url="https://acme.example.com/n", notification_secret="whsec_x"
    )

    with django_capture_on_commit_callbacks():
        assert services.pause_subscription(subscription=webhook, reason="r") is True
    assert services.pause_subscription(subscription=webhook, reason="r") is False

    assert _notices() == [("notice", "webhook.paused"), ("operator", "webhook.paused")]


def test_without_targets_nothing_is_written(subscribe, settings):
    settings.WEBHOOK_OPERATIONAL_URL = ""
    webhook = subscribe("https://receiver.example.com/hooks")
    services.pause_subscription(subscription=webhook, reason="r")
    assert _notices() == []


def test_a_notification_that_fails_for_good_notifies_nothing(
    receiver, settings, kicked, subscribe
):
    settings.WEBHOOK_OPERATIONAL_URL = receiver.url("/ops")
    settings.WEBHOOK_OPERATIONAL_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    receiver.script("/ops", Reply(400))
    hooks = subscribe(receiver.url("/bad"))
    receiver.script("/bad", Reply(400))
    make_delivery(hooks)

    deliver_due_batch(limit=10)  # the event delivery fails for good
    (notice,) = Delivery.objects.filter(kind="operator")
    deliver_due_batch(limit=10)  # its notification fails for good too

    assert reload(notice).status == "failed"
    assert [r.path for r in receiver.requests()] == ["/bad", "/ops"]
    assert Delivery.objects.filter(kind="operator").count() == 1


def test_a_notice_whose_client_removed_its_url_is_cancelled_unsent(
    subscribe, settings, kicked, receiver
):
    settings.WEBHOOK_OPERATIONAL_URL = ""
    webhook = subscribe(receiver.url("/hooks"))
    Client.objects.filter(pk=webhook.client_id).update(
        notification_url=receiver.url("/n"), notification_secret="whsec_x"
    )
    services.pause_subscription(subscription=webhook, reason="r")
    services.set_notification_url(client=webhook.client, url=None)

    deliver_due_batch(limit=10)

    (notice,) = Delivery.objects.filter(kind="notice")
    assert (notice.status, notice.attempts_count) == ("cancelled", 0)
    assert receiver.requests() == []


@pytest.mark.ssrf_guard
def test_the_ssrf_guard_vets_a_notifications_destination(
    receiver, settings, kicked, subscribe
):
    settings.WEBHOOK_OPERATIONAL_URL = receiver.url("/ops")  # loopback: blocked
    settings.WEBHOOK_OPERATIONAL_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    webhook = subscribe("https://receiver.example.com/hooks")
    services.pause_subscription(subscription=webhook, reason="r")

    deliver_due_batch(limit=10)

    (notice,) = Delivery.objects.filter(kind="operator")
    assert notice.status == "pending"  # retried on the backoff table
    assert notice.attempts.get().error.startswith("blocked destination")
    assert receiver.requests() == []
