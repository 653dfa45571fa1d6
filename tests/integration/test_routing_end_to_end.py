"""Routing and idempotent publishing through the real API, worker and
receiver: who gets what, and a repeated publish sends nothing new."""

import pytest

from delivery.models import Delivery
from tests.support.flows import create_webhook, wait_for_delivery
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def publish(publisher_api, **body) -> dict:
    headers = {}
    if "key" in body:
        headers["HTTP_IDEMPOTENCY_KEY"] = body.pop("key")
    body.setdefault("payload", {"n": 1})
    response = publisher_api.post("/api/v1/events", body, format="json", **headers)
    assert response.status_code in (200, 202), response.content
    return response.json()


def test_each_event_reaches_exactly_the_webhooks_its_routing_rules_name(
    stack, receiver, api, other_api, publisher_api
):
    stack.start_worker()
    stack.start_beat()
    hooks = {
        "acme": create_webhook(api, receiver.url("/acme")),
        "globex": create_webhook(other_api, receiver.url("/globex")),
        "tracking": create_webhook(
            other_api, receiver.url("/tracking"), trackingId="PKG1"
        ),
        "released": create_webhook(
            api,
            receiver.url("/released"),
            event_groups=["STATUS_CHANGED:RELEASED"],
        ),
    }
    published = {
        "acme": publish(publisher_api, type="DELIVERED", tenant="acme"),
        "public": publish(publisher_api, type="DELIVERED", resource_id="PKG1"),
        "public-other": publish(publisher_api, type="DELIVERED", resource_id="PKG2"),
        "rejected": publish(
            publisher_api, type="STATUS_CHANGED", subtype="REJECTED", tenant="acme"
        ),
        "released": publish(
            publisher_api, type="STATUS_CHANGED", subtype="RELEASED", tenant="acme"
        ),
    }
    # Created after every event above: receives none of them.
    late = create_webhook(api, receiver.url("/late"))

    expected = {
        "/acme": [published["acme"]["id"]],
        "/tracking": [published["public"]["id"]],
        "/released": [published["released"]["id"]],
    }
    assert [p["deliveries"] for p in published.values()] == [1, 1, 0, 0, 1]
    for path, (event_id,) in expected.items():
        webhook_id = hooks[path.strip("/")]["id"]
        wait_for_delivery(event_id, webhook_id, "succeeded")

    got = {
        path: [r.headers["webhook-id"] for r in receiver.requests(path)]
        for path in ("/acme", "/globex", "/tracking", "/released", "/late")
    }
    assert got == {**expected, "/globex": [], "/late": []}
    ids = [p["id"] for p in published.values()]
    assert not Delivery.objects.filter(event_id__in=ids, subscription_id=late["id"])
    assert Delivery.objects.filter(event_id__in=ids).count() == 3


def test_publishing_twice_with_one_id_or_idempotency_key_sends_once(
    stack, receiver, api, publisher_api
):
    stack.start_worker()
    stack.start_beat()
    webhook = create_webhook(api, receiver.url("/hooks"))

    by_id = [publish(publisher_api, id="order-1", type="DELIVERED", tenant="acme")]
    by_id.append(publish(publisher_api, id="order-1", type="DELIVERED", tenant="acme"))
    by_key = [publish(publisher_api, key="k-1", type="DELIVERED", tenant="acme")]
    by_key.append(publish(publisher_api, key="k-1", type="DELIVERED", tenant="acme"))

    assert by_id[0] == by_id[1] and by_key[0] == by_key[1]
    assert by_id[0]["id"] != by_key[0]["id"]
    for event in (by_id[0], by_key[0]):
        wait_for_delivery(event["id"], webhook["id"], "succeeded")
    wait_until(lambda: len(receiver.requests()) >= 2, timeout=5, message="2 requests")
    received = sorted(r.headers["webhook-id"] for r in receiver.requests())
    assert received == sorted([by_id[0]["id"], by_key[0]["id"]])
    assert Delivery.objects.filter(subscription_id=webhook["id"]).count() == 2
