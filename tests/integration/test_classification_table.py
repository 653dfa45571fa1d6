"""Every row of docs/spec.md's classification table, end to end: a real worker and
dispatcher against PostgreSQL, Redis and a real local receiver."""

from itertools import pairwise

import pytest

from delivery.models import Attempt, Delivery
from subscriptions.models import Subscription
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

# path: (script, final status, attempt outcomes, counted as endpoint failure)
ROWS = {
    "/ok": ([Reply(200)], "succeeded", ["ack"], False),
    "/no-content": ([Reply(204, b"")], "succeeded", ["ack"], False),
    "/conflict": (
        [Reply(409), Reply(409), Reply(200)],
        "succeeded",
        ["conflict_retry", "conflict_retry", "ack"],
        False,
    ),
    "/bad": ([Reply(400, b"no such field")], "failed", ["permanent_failure"], False),
    "/throttled": (
        [Reply(429, headers={"Retry-After": "1"}), Reply(200)],
        "succeeded",
        ["retry", "ack"],
        False,
    ),
    "/throttled-for-an-hour": (
        [Reply(429, headers={"Retry-After": "3600"}), Reply(200)],
        "succeeded",
        ["retry", "ack"],
        False,
    ),
    "/moved": (
        [Reply(302, headers={"Location": "/elsewhere"}), Reply(200)],
        "succeeded",
        ["failure", "ack"],
        True,
    ),
    "/missing": ([Reply(404), Reply(200)], "succeeded", ["failure", "ack"], True),
    "/unauthorized": ([Reply(401), Reply(200)], "succeeded", ["failure", "ack"], True),
    "/broken": (
        [Reply(503), Reply(500), Reply(200)],
        "succeeded",
        ["failure", "failure", "ack"],
        True,
    ),
    "/slow": (
        [Reply(200, delay=1.5), Reply(200)],
        "succeeded",
        ["failure", "ack"],
        True,
    ),
}


def test_every_row_of_the_classification_table(stack_factory, receiver, api):
    # One receiver stands for every row: destination-wide backpressure (a 429
    # with Retry-After postpones every delivery to it, test_backpressure.py)
    # would hold the other rows' timings, so it is off here.
    stack = stack_factory(WEBHOOK_BACKPRESSURE_MAX="0s")
    stack.start_worker()
    stack.start_beat()
    webhooks = {}
    for path, (script, *_rest) in ROWS.items():
        receiver.script(path, *script)
        webhooks[path] = create_webhook(api, receiver.url(path))["id"]
    refused = create_webhook(api, f"http://127.0.0.1:{free_port()}/hooks")["id"]
    tls = create_webhook(api, f"https://127.0.0.1:{receiver.port}/tls")["id"]

    event_id, count = publish(api.client_obj)
    assert count == len(ROWS) + 2

    for path, (_script, status, outcomes, counted) in ROWS.items():
        delivery = wait_for_delivery(event_id, webhooks[path], status, timeout=20)
        attempts = attempts_of(delivery)
        assert [a.outcome for a in attempts] == outcomes, path
        assert delivery.attempts_count == len(outcomes), path
        subscription = Subscription.objects.get(pk=webhooks[path])
        assert (subscription.last_failure_at is not None) is counted, path
        assert subscription.consecutive_failures == 0, path  # the ack reset it

    bad = wait_for_delivery(event_id, webhooks["/bad"], "failed")
    assert attempts_of(bad)[0].response_excerpt == "no such field"
    assert len(receiver.requests("/bad")) == 1  # never retried

    # 409 retries at the fixed interval (150ms here), not on the backoff table
    conflict = [r.at for r in receiver.requests("/conflict")]
    assert all(0.13 <= b - a < 0.6 for a, b in pairwise(conflict))

    # 429 waits as long as Retry-After asks (1 s, longer than the 100ms table) ...
    first, second = (r.at for r in receiver.requests("/throttled"))
    assert 0.95 <= second - first < 1.8
    # ... up to WEBHOOK_RETRY_AFTER_MAX (1 s here), not the hour it asked for
    first, second = (r.at for r in receiver.requests("/throttled-for-an-hour"))
    assert 0.95 <= second - first < 1.8

    # a redirect is a failure and is not followed
    moved = wait_for_delivery(event_id, webhooks["/moved"], "succeeded")
    assert attempts_of(moved)[0].status_code == 302
    assert receiver.requests("/elsewhere") == []

    slow = wait_for_delivery(event_id, webhooks["/slow"], "succeeded")
    assert attempts_of(slow)[0].error.startswith("timeout")
    assert attempts_of(slow)[0].status_code is None

    # no answer at all: a refused connection and a TLS failure are failures
    for webhook_id, error in [(refused, "refused"), (tls, "tls")]:
        failed = wait_until(
            lambda webhook_id=webhook_id: (
                lambda rows: rows if len(rows) >= 2 else None
            )(
                list(
                    Attempt.objects.filter(
                        delivery__subscription_id=webhook_id
                    ).order_by("number")
                )
            ),
            message=f"two attempts to the {error} webhook",
        )
        assert {a.outcome for a in failed} == {"failure"}
        assert all(error in a.error.lower() for a in failed), failed[0].error
        assert all(a.status_code is None for a in failed)
        subscription = Subscription.objects.get(pk=webhook_id)
        assert subscription.consecutive_failures >= 2
        assert Delivery.objects.get(subscription_id=webhook_id).status == "pending"


def test_a_blocked_destination_is_a_failure_and_gets_no_request(
    stack_factory, receiver, api
):
    # The test process lets the webhook be created; the worker keeps the guard on.
    stack = stack_factory()
    stack.start_worker(WEBHOOK_ALLOW_PRIVATE_DESTINATIONS="false")
    webhook = create_webhook(api, receiver.url("/hooks"))
    event_id, _ = publish(api.client_obj)

    attempt = wait_until(
        lambda: Attempt.objects.filter(delivery__subscription_id=webhook["id"]).first(),
        message="an attempt",
    )
    assert attempt.outcome == "failure"
    assert attempt.error.startswith("blocked destination"), attempt.error
    assert attempt.status_code is None
    assert receiver.requests() == []
    delivery = Delivery.objects.get(event_id=event_id)
    assert delivery.status == "pending"
    assert delivery.last_error.startswith("blocked destination")
