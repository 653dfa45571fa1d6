"""What must survive: a worker killed mid-request, a broker that is down when
publishing, several workers at once, and a dead destination (the breaker)."""

import json
import time
from itertools import pairwise

import pytest

from delivery.models import Attempt, Breaker, Delivery
from events.models import Event
from tests.support.flows import (
    attempts_of,
    create_webhook,
    publish,
    wait_for_delivery,
)
from tests.support.ports import free_port
from tests.support.receiver import Reply
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_killed_mid_request_still_delivers_once_the_lease_expires(
    stack_factory, receiver, api
):
    stack = stack_factory(WEBHOOK_CLAIM_LEASE="3s", WEBHOOK_TIMEOUT="1s")
    doomed = stack.start_worker(name="doomed")
    stack.start_beat()
    receiver.script("/hooks", Reply(200, delay=0.8), Reply(200))
    webhook = create_webhook(api, receiver.url("/hooks"))
    event_id, _ = publish(api.client_obj)

    (first,) = receiver.wait_for(1)
    doomed.kill()  # SIGKILL while the request is in flight: nothing is recorded
    delivery = Delivery.objects.get(event_id=event_id)
    assert delivery.status == "pending"
    assert delivery.lease_token is not None
    assert delivery.attempts_count == 0

    stack.start_worker(name="survivor")
    second = receiver.wait_for(2, timeout=15)[1]
    delivered = wait_for_delivery(event_id, webhook["id"], "succeeded")

    # sent again only once the 3 s lease had run out, never while in flight
    assert second.at - first.at >= 2.5
    assert second.headers["webhook-id"] == first.headers["webhook-id"] == event_id
    assert [a.outcome for a in attempts_of(delivered)] == ["ack"]
    time.sleep(0.5)
    assert len(receiver.requests()) == 2


def test_a_publish_while_the_broker_is_unreachable_is_delivered_by_the_sweeper(
    stack, receiver, api
):
    stack.start_worker()
    stack.start_beat()
    webhook = create_webhook(api, receiver.url("/hooks"))
    dead_port = free_port()
    # The web side's broker is a closed port; the workers' is the real Redis.
    output = stack.run_python(
        """
import json, time
from django.test import Client as HttpClient
from subscriptions.services import create_api_key
from webhooks_project.celery import app

_, key = create_api_key(client_name="platform", scopes=["publish"])
http = HttpClient(HTTP_AUTHORIZATION=f"Bearer {key}")
started = time.monotonic()
response = http.post(
    "/api/v1/events",
    {"type": "DELIVERED", "tenant": "acme", "payload": {"n": 1}},
    content_type="application/json",
)
print(json.dumps({
    "status": response.status_code,
    "body": response.json(),
    "seconds": time.monotonic() - started,
    "broker": app.conf.broker_url,
}))
""",
        REDIS_URL=f"redis://127.0.0.1:{dead_port}/3",
    )
    answer = json.loads(output.strip().splitlines()[-1])
    assert answer["broker"] == f"redis://127.0.0.1:{dead_port}/3"
    assert answer["status"] == 202, answer
    assert answer["body"]["deliveries"] == 1
    assert answer["seconds"] < 2.0  # the dead broker did not stall the publish
    event_id = answer["body"]["id"]
    assert Event.objects.filter(pk=event_id).exists()  # committed

    (request,) = receiver.wait_for(1, timeout=15)
    assert request.headers["webhook-id"] == event_id
    wait_for_delivery(event_id, webhook["id"], "succeeded")


def test_two_workers_never_send_the_same_delivery_at_once(stack, receiver, api):
    first = stack.start_worker(name="first", concurrency=4)
    second = stack.start_worker(name="second", concurrency=4)
    stack.start_beat()
    receiver.script("/hooks", Reply(200, delay=0.01))
    create_webhook(api, receiver.url("/hooks"))
    t0 = time.monotonic()
    published = {publish(api.client_obj, payload={"n": n})[0] for n in range(200)}
    print("published", time.monotonic() - t0)
    receiver.wait_for(200, timeout=60)
    print("received", time.monotonic() - t0)
    wait_until(
        lambda: not Delivery.objects.exclude(status="succeeded").exists(),
        timeout=30,
        message="every delivery to succeed",
    )
    time.sleep(0.5)  # anything sent twice would have arrived by now
    ids = [r.headers["webhook-id"] for r in receiver.requests()]
    assert len(ids) == 200
    assert set(ids) == published
    assert Attempt.objects.count() == 200
    # both workers took part
    assert "deliver_due" in first.log() and "deliver_due" in second.log()


def test_a_dead_destination_trips_the_breaker_until_a_probe_succeeds(
    stack_factory, receiver, api
):
    stack = stack_factory(
        WEBHOOK_BREAKER_THRESHOLD="3",
        WEBHOOK_BREAKER_COOLDOWN="1s",
        WEBHOOK_DELIVERY_TTL="20s",
    )
    stack.start_worker()
    stack.start_beat()
    receiver.script("/down", Reply(503))
    # eight webhooks, one destination (the query string only tells them apart)
    webhooks = [
        create_webhook(api, receiver.url(f"/down?webhook={n}"))["id"] for n in range(8)
    ]
    event_id, count = publish(api.client_obj)
    assert count == 8

    receiver.wait_for(8)  # the first attempts go out before anything is known
    breaker = wait_until(
        lambda: Breaker.objects.filter(open_until__isnull=False).first(),
        message="the breaker to open",
    )
    assert breaker.destination == f"http://127.0.0.1:{receiver.port}"
    wait_until(
        lambda: Attempt.objects.filter(outcome="skipped").count() >= 8,
        message="attempts skipped while the breaker is open",
    )
    # while open, only one probe per cooldown reaches the destination
    time.sleep(2.5)
    after_burst = receiver.requests("/down")[8:]
    assert 1 <= len(after_burst) <= 4, [r.at for r in after_burst]
    assert all(b.at - a.at >= 0.9 for a, b in pairwise(after_burst))

    receiver.script("/down", Reply(200))
    for webhook_id in webhooks:
        wait_for_delivery(event_id, webhook_id, "succeeded", timeout=15)
    breaker.refresh_from_db()
    assert (breaker.consecutive_failures, breaker.open_until) == (0, None)
    skipped = Attempt.objects.filter(outcome="skipped")
    assert skipped.exists()
    assert not skipped.exclude(status_code=None).exists()
    # skipped attempts are recorded but were never requests
    assert Attempt.objects.exclude(outcome="skipped").count() == len(
        receiver.requests("/down")
    )
