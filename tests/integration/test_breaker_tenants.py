"""The shared circuit breaker, end to end with a real worker and receiver:
one tenant's 404s and unsendable requests never postpone another tenant's
deliveries to the same host, and a host that refuses everyone's connections
still trips it (docs/security.md, "The circuit breaker and tenants")."""

import time

import pytest

from delivery.models import Attempt, Breaker
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

BREAKER = {
    "WEBHOOK_BREAKER_THRESHOLD": "2",
    "WEBHOOK_BREAKER_COOLDOWN": "30s",
    "WEBHOOK_DELIVERY_TTL": "20s",
}


def test_a_tenants_404s_and_unsendable_requests_never_delay_another_tenant(
    stack_factory, receiver, api, other_api
):
    stack = stack_factory(**BREAKER)
    stack.start_worker()
    stack.start_beat()
    receiver.script("/gone", Reply(404))
    for n in range(3):
        create_webhook(api, receiver.url(f"/gone?webhook={n}"))
    unsendable = create_webhook(api, receiver.url("/hooks?webhook=unsendable"))
    # The API refuses such a content type now; one stored before it did must
    # still not be charged to the host.
    Subscription.objects.filter(pk=unsendable["id"]).update(
        content_type="application/json✓"
    )

    publish(api.client_obj)
    failures = Attempt.objects.filter(outcome="failure")
    wait_until(lambda: failures.count() >= 12, message="tenant A's retries to fail")
    assert failures.filter(error__startswith="invalid request: cannot encode").exists()
    assert not Breaker.objects.filter(open_until__isnull=False).exists()

    webhook = create_webhook(other_api, receiver.url("/hooks?webhook=b"))
    started = time.monotonic()
    event_id, _ = publish(other_api.client_obj)
    delivered = wait_for_delivery(event_id, webhook["id"], "succeeded")
    assert time.monotonic() - started < 5
    assert [a.outcome for a in attempts_of(delivered)] == ["ack"]
    assert not Attempt.objects.filter(outcome="skipped").exists()
    assert receiver.requests("/hooks")  # only tenant B's requests reached it


def test_a_host_refusing_everyones_connections_still_trips_it(
    stack_factory, api, other_api
):
    stack = stack_factory(**BREAKER)
    stack.start_worker()
    stack.start_beat()
    url = f"http://127.0.0.1:{free_port()}/hooks"  # nothing listens there
    create_webhook(api, url)
    webhook = create_webhook(other_api, url + "?tenant=b")

    publish(api.client_obj)
    publish(other_api.client_obj)
    breaker = wait_until(
        lambda: Breaker.objects.filter(open_until__isnull=False).first(),
        message="the breaker to open",
    )
    assert breaker.destination == url.removesuffix("/hooks")
    wait_until(
        lambda: Attempt.objects.filter(
            outcome="skipped", delivery__subscription_id=webhook["id"]
        ).exists(),
        message="tenant B's retries to be postponed by the open breaker",
    )
    refused = Attempt.objects.filter(outcome="failure")
    assert set(refused.values_list("error", flat=True)) == {"connection refused"}
