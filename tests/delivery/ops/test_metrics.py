import uuid
from datetime import timedelta

import pytest
from django.test import Client as HttpClient
from django.test import RequestFactory
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from delivery.models import Attempt, Breaker, Delivery
from delivery.ops.metrics import metrics_view
from subscriptions.models import Subscription
from tests.support.rows import make_delivery, make_event


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(**extra: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = HttpClient().get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return _samples(response.content.decode())


def _attempt(delivery: Delivery, outcome: str, ms: int, age: timedelta) -> None:
    Attempt.objects.create(
        delivery=delivery,
        number=Attempt.objects.filter(delivery=delivery).count() + 1,
        at=timezone.now() - age,
        outcome=outcome,
        duration_ms=ms,
    )


def test_the_scrape_reports_what_the_database_holds(subscribe, settings):
    settings.WEBHOOK_METRICS_TOKEN = ""
    now = timezone.now()
    hook = subscribe("http://127.0.0.1:9/hooks")
    subscribe("http://127.0.0.1:9/a", status=Subscription.Status.PAUSED)
    subscribe("http://127.0.0.1:9/b", status=Subscription.Status.PAUSED)
    for _ in range(3):
        make_delivery(hook, next_attempt_at=now - timedelta(seconds=5))
    make_delivery(hook, next_attempt_at=now + timedelta(hours=3))
    make_delivery(
        hook,
        next_attempt_at=now + settings.WEBHOOK_CLAIM_LEASE / 2,
        lease_token=uuid.uuid4(),
    )
    done = make_delivery(hook, status="succeeded", next_attempt_at=None)
    recent = timedelta(seconds=10)
    _attempt(done, "ack", 3, recent)
    _attempt(done, "ack", 40, recent)
    _attempt(done, "retry", 700, recent)
    _attempt(done, "skipped", 0, recent)
    _attempt(done, "failure", 900, timedelta(minutes=10))  # outside the window
    Breaker.objects.create(destination="https://a.example:443", open_until=now + recent)
    Breaker.objects.create(destination="https://b.example:443", open_until=now - recent)
    Breaker.objects.create(destination="https://c.example:443")
    make_event(hook.client)

    samples = _scrape()

    assert samples[("webhook_deliveries_due", ())] == 3
    assert samples[("webhook_deliveries_in_flight", ())] == 1
    attempts = {
        dict(labels)["outcome"]: value
        for (name, labels), value in samples.items()
        if name == "webhook_attempts_last_minute"
    }
    assert attempts == {
        "ack": 2,
        "conflict_retry": 0,
        "retry": 1,
        "failure": 0,
        "permanent_failure": 0,
        "skipped": 1,
    }
    duration = "webhook_attempt_duration_last_minute_seconds"
    assert samples[(f"{duration}_bucket", (("le", "0.005"),))] == 1
    assert samples[(f"{duration}_bucket", (("le", "0.05"),))] == 2
    assert samples[(f"{duration}_bucket", (("le", "0.5"),))] == 2
    assert samples[(f"{duration}_bucket", (("le", "1.0"),))] == 3
    assert samples[(f"{duration}_bucket", (("le", "+Inf"),))] == 3
    assert samples[(f"{duration}_gsum", ())] == pytest.approx(0.743)
    assert samples[("webhook_subscriptions", (("status", "paused"),))] == 2
    assert samples[("webhook_subscriptions", (("status", "active"),))] == 1
    assert samples[("webhook_subscriptions", (("status", "expired"),))] == 0
    assert samples[("webhook_circuit_breakers", (("state", "open"),))] == 1
    assert samples[("webhook_circuit_breakers", (("state", "half_open"),))] == 1
    # make_delivery makes one event per delivery: 6 above, and one more.
    assert samples[("webhook_events_published_last_minute", ())] == 7


def test_with_a_token_set_a_scrape_needs_it(db, settings):
    settings.WEBHOOK_METRICS_TOKEN = "metrics-token-123"

    missing = HttpClient().get("/metrics")
    wrong = HttpClient().get("/metrics", HTTP_AUTHORIZATION="Bearer nope")

    for response in (missing, wrong):
        assert response.status_code == 401
        body = response.json()
        assert set(body) == {"uuid", "status", "reason"}
        assert body["status"] == "401"
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert b"metrics-token-123" not in response.content
    samples = _scrape(HTTP_AUTHORIZATION="Bearer metrics-token-123")
    assert samples[("webhook_deliveries_due", ())] == 0


def test_with_a_token_set_a_public_client_with_it_is_served(db, settings):
    settings.WEBHOOK_METRICS_TOKEN = "metrics-token-123"
    request = RequestFactory().get(
        "/metrics",
        REMOTE_ADDR="8.8.8.8",
        HTTP_AUTHORIZATION="Bearer metrics-token-123",
    )

    assert metrics_view(request).status_code == 200


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.7", "::ffff:127.0.0.1"]
)
def test_without_a_token_local_and_private_clients_are_served(db, settings, address):
    settings.WEBHOOK_METRICS_TOKEN = ""
    request = RequestFactory().get("/metrics", REMOTE_ADDR=address)

    response = metrics_view(request)

    assert response.status_code == 200
    assert b"webhook_deliveries_due" in response.content


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "not-an-ip"]
)
def test_without_a_token_a_public_client_is_refused(db, settings, address):
    settings.WEBHOOK_METRICS_TOKEN = ""
    request = RequestFactory().get("/metrics", REMOTE_ADDR=address)

    response = metrics_view(request)

    assert response.status_code == 403
    assert b"webhook_" not in response.content
    assert b'"status": "403"' in response.content


def test_other_methods_are_a_405_in_the_envelope(db, settings):
    settings.WEBHOOK_METRICS_TOKEN = ""

    response = HttpClient().post("/metrics")

    assert response.status_code == 405
    assert response.json()["status"] == "405"


def test_a_scrape_is_six_queries_however_much_there_is(
    subscribe, settings, django_assert_num_queries
):
    settings.WEBHOOK_METRICS_TOKEN = ""
    hook = subscribe("http://127.0.0.1:9/hooks")
    for _ in range(20):
        done = make_delivery(hook, status="succeeded")
        _attempt(done, "ack", 10, timedelta(seconds=1))
    request = RequestFactory().get("/metrics", REMOTE_ADDR="127.0.0.1")

    with django_assert_num_queries(6):
        response = metrics_view(request)

    assert b"webhook_attempts_last_minute" in response.content
