"""Operational notifications end to end: each type arrives, signed, at the
operator's receiver and at the client's notification URL, once per
transition; a notification that fails is retried and never notified."""

import json
from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from delivery.sender.signing import new_secret
from subscriptions.models import Subscription
from tests.support.flows import create_webhook, publish
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TYPES = (
    "webhook.paused",
    "webhook.recovered",
    "webhook.disabled",
    "delivery.exhausted",
    "webhook.expired",
)


def _verified(requests, secret):
    """(type, data) of each request, its Standard Webhooks signature checked."""
    verifier = Webhook(secret)
    return [
        (lambda body: (body["type"], body["data"]))(
            verifier.verify(r.body.decode(), dict(r.headers))
        )
        for r in requests
    ]


def test_each_notification_arrives_signed_at_both_receivers_once(
    stack_factory, start_receiver, api
):
    operator, client_side, hooks = start_receiver(), start_receiver(), start_receiver()
    operator_secret = new_secret()
    # The operator's first answer fails: retried, never notified about.
    operator.script("/ops", Reply(500), Reply(200))
    stack = stack_factory(
        WEBHOOK_OPERATIONAL_URL=operator.url("/ops"),
        WEBHOOK_OPERATIONAL_SECRET=operator_secret,
        WEBHOOK_PAUSE_AFTER_FAILURES="2",
    )
    stack.start_worker()
    stack.start_beat()
    answer = api.put(
        "/api/v1/notification-settings",
        {"notification_url": client_side.url("/notices")},
        format="json",
    )
    assert answer.status_code == 200, answer.content
    client_secret = answer.json()["secret"]
    assert api.get("/api/v1/notification-settings").json() == {
        "notification_url": client_side.url("/notices")
    }

    hooks.script("/flaky", Reply(503))
    hooks.script("/gone", Reply(410))
    hooks.script("/bad", Reply(400))
    flaky = create_webhook(api, hooks.url("/flaky"))
    gone = create_webhook(api, hooks.url("/gone"), event_groups=["IN_TRANSIT"])
    bad = create_webhook(api, hooks.url("/bad"), event_groups=["READY_FOR_PICKUP"])
    lapsing = create_webhook(api, hooks.url("/lapsing"), event_groups=["PRE_NOTIFIED"])
    publish(api.client_obj)  # DELIVERED: /flaky, paused after 2 failures
    publish(api.client_obj, type="IN_TRANSIT")  # /gone: disabled
    exhausted_event, _ = publish(
        api.client_obj, type="READY_FOR_PICKUP"
    )  # /bad: failed
    Subscription.objects.filter(pk=lapsing["id"]).update(
        expires_at=timezone.now() + timedelta(milliseconds=300)
    )
    wait_until(
        lambda: Subscription.objects.filter(pk=flaky["id"], status="paused").exists(),
        message="the flaky webhook to be paused",
    )
    hooks.script("/flaky", Reply(200))
    assert api.post(f"/api/v1/webhooks/{flaky['id']}/resume").status_code == 200

    expected = {
        ("webhook.paused", flaky["id"]),
        ("webhook.recovered", flaky["id"]),
        ("webhook.disabled", gone["id"]),
        ("delivery.exhausted", bad["id"]),
        ("webhook.expired", lapsing["id"]),
    }
    for receiver, path, secret in (
        (operator, "/ops", operator_secret),
        (client_side, "/notices", client_secret),
    ):
        notices = wait_until(
            lambda r=receiver, p=path, s=secret: (
                lambda got: (
                    got if {(t, d["webhook_id"]) for t, d in got} >= expected else None
                )
            )(_verified(r.requests(p), s)),
            timeout=20,
            message=f"every notification at {path}",
        )
        by_kind = {(t, d["webhook_id"]): d for t, d in notices}
        assert by_kind[("webhook.paused", flaky["id"])]["last_status_code"] == 503
        assert by_kind[("webhook.paused", flaky["id"])]["reason"].startswith(
            "2 consecutive failed attempts"
        )
        assert by_kind[("webhook.disabled", gone["id"])]["last_status_code"] == 410
        exhausted = by_kind[("delivery.exhausted", bad["id"])]
        assert (exhausted["last_status_code"], exhausted["reason"]) == (
            400,
            "failed: HTTP 400",
        )
        assert exhausted["deliveries_url"] == f"/api/v1/webhooks/{bad['id']}/deliveries"
        assert exhausted["delivery_url"].startswith("/api/v1/deliveries/")

    # Once per transition: one notification (webhook-id) per type and webhook,
    # nothing else (the operator's failed first answer caused no notification).
    for receiver, path in ((operator, "/ops"), (client_side, "/notices")):
        ids = Counter(r.headers["webhook-id"] for r in receiver.requests(path))
        kinds = Counter(json.loads(r.body)["type"] for r in receiver.requests(path))
        assert len(ids) == len(expected), kinds
        assert set(kinds) == set(TYPES)
    assert (
        max(Counter(r.headers["webhook-id"] for r in operator.requests()).values()) == 2
    )
    assert exhausted_event
