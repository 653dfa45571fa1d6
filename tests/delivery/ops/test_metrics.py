import ipaddress
import json
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
from tests.support.rows import make_delivery
from webhooks_project import conf


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
    settings.WEBHOOK_METRICS_TOKEN = "metrics-token-123"
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
    make_delivery(hook, status="succeeded", next_attempt_at=None)
    recent = timedelta(seconds=10)
    Breaker.objects.create(destination="https://a.example:443", open_until=now + recent)
    Breaker.objects.create(destination="https://b.example:443", open_until=now - recent)
    Breaker.objects.create(destination="https://c.example:443")

    samples = _scrape(HTTP_AUTHORIZATION="Bearer metrics-token-123")

    assert samples[("webhook_deliveries_due", ())] == 3
    assert samples[("webhook_deliveries_in_flight", ())] == 1
    assert samples[("webhook_subscriptions", (("status", "paused"),))] == 2
    assert samples[("webhook_subscriptions", (("status", "active"),))] == 1
    assert samples[("webhook_subscriptions", (("status", "expired"),))] == 0
    assert samples[("webhook_circuit_breakers", (("state", "open"),))] == 1
    assert samples[("webhook_circuit_breakers", (("state", "half_open"),))] == 1


def test_the_counters_are_served_with_every_series_from_zero(db, settings):
    settings.WEBHOOK_METRICS_TOKEN = "metrics-token-123"

    samples = _scrape(HTTP_AUTHORIZATION="Bearer metrics-token-123")

    names = {name for name, _ in samples}
    assert {
        "webhook_attempts_total",
        "webhook_attempt_duration_seconds_bucket",
        "webhook_attempt_duration_seconds_count",
        "webhook_attempt_duration_seconds_sum",
        "webhook_events_published_total",
        "webhook_deliveries_finished_total",
        "webhook_deliveries_postponed_total",
    } <= names
    outcomes = {
        dict(labels)["outcome"]
        for name, labels in samples
        if name == "webhook_attempts_total"
    }
    assert outcomes == set(Attempt.Outcome.values)
    statuses = {
        dict(labels)["status"]
        for name, labels in samples
        if name == "webhook_deliveries_finished_total"
    }
    assert statuses == set(Delivery.FINISHED)
    reasons = {
        dict(labels)["reason"]
        for name, labels in samples
        if name == "webhook_deliveries_postponed_total"
    }
    assert reasons == {"rate_limit", "retry_after"}


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
def test_with_debug_on_and_no_token_local_and_private_clients_are_served(
    db, settings, address
):
    settings.DEBUG = True
    settings.WEBHOOK_METRICS_TOKEN = ""
    request = RequestFactory().get("/metrics", REMOTE_ADDR=address)

    response = metrics_view(request)

    assert response.status_code == 200
    assert b"webhook_deliveries_due" in response.content


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "2001:4860:4860::8888", "::ffff:8.8.8.8", "not-an-ip"]
)
def test_with_debug_on_and_no_token_a_public_client_is_refused(db, settings, address):
    settings.DEBUG = True
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


def test_a_scrape_is_four_queries_however_much_there_is(
    subscribe, settings, django_assert_num_queries
):
    settings.WEBHOOK_METRICS_ALLOW_CIDRS = (ipaddress.ip_network("127.0.0.1"),)
    hook = subscribe("http://127.0.0.1:9/hooks")
    for _ in range(20):
        done = make_delivery(hook, status="succeeded")
        _attempt(done, "ack", 10, timedelta(seconds=1))
    request = RequestFactory().get("/metrics", REMOTE_ADDR="127.0.0.1")

    with django_assert_num_queries(4):
        response = metrics_view(request)

    assert b"webhook_deliveries_due" in response.content


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.1.2.3", "192.168.0.7", "8.8.8.8"]
)
def test_with_debug_off_and_no_token_every_client_is_refused(db, settings, address):
    # Production: a private address is no credential (a proxy, a shared
    # network or a cluster's pods all have one).
    settings.DEBUG = False
    settings.WEBHOOK_METRICS_TOKEN = ""
    settings.WEBHOOK_METRICS_ALLOW_CIDRS = ()
    request = RequestFactory().get("/metrics", REMOTE_ADDR=address)

    response = metrics_view(request)

    assert response.status_code == 403
    assert b"webhook_" not in response.content
    body = json.loads(response.content)
    assert set(body) == {"uuid", "status", "reason"}
    assert body["status"] == "403"
    assert "WEBHOOK_METRICS_TOKEN" in body["reason"]
    assert "WEBHOOK_METRICS_ALLOW_CIDRS" in body["reason"]


def test_with_debug_off_a_private_client_without_the_token_is_refused(db, settings):
    settings.DEBUG = False
    settings.WEBHOOK_METRICS_TOKEN = "metrics-token-123"
    settings.WEBHOOK_METRICS_ALLOW_CIDRS = ()

    refused = metrics_view(RequestFactory().get("/metrics", REMOTE_ADDR="10.1.2.3"))
    served = metrics_view(
        RequestFactory().get(
            "/metrics",
            REMOTE_ADDR="10.1.2.3",
            HTTP_AUTHORIZATION="Bearer metrics-token-123",
        )
    )

    assert refused.status_code == 401
    assert json.loads(refused.content)["status"] == "401"
    assert served.status_code == 200
    assert b"webhook_deliveries_due" in served.content


@pytest.mark.parametrize("token", ["", "metrics-token-123"])
@pytest.mark.parametrize(
    "address", ["10.0.5.7", "::ffff:10.0.5.200", "2001:db8::42", "127.0.0.1"]
)
def test_an_allow_listed_address_is_served_without_the_token(
    db, settings, token, address
):
    settings.DEBUG = False
    settings.WEBHOOK_METRICS_TOKEN = token
    settings.WEBHOOK_METRICS_ALLOW_CIDRS = conf.parse_networks(
        "10.0.5.0/24, 2001:db8::/64, 127.0.0.1"
    )
    request = RequestFactory().get("/metrics", REMOTE_ADDR=address)

    response = metrics_view(request)

    assert response.status_code == 200
    assert b"webhook_deliveries_due" in response.content


@pytest.mark.parametrize("address", ["10.0.6.1", "127.0.0.2", "8.8.8.8", "nope"])
def test_an_address_outside_the_allow_list_still_needs_the_token(db, settings, address):
    settings.DEBUG = False
    settings.WEBHOOK_METRICS_TOKEN = ""
    settings.WEBHOOK_METRICS_ALLOW_CIDRS = conf.parse_networks("10.0.5.0/24,127.0.0.1")
    request = RequestFactory().get("/metrics", REMOTE_ADDR=address)

    assert metrics_view(request).status_code == 403


def test_the_allow_list_refuses_a_cidr_with_host_bits():
    with pytest.raises(ValueError):
        conf.parse_networks("10.0.5.1/24")
    assert conf.parse_networks("") == ()
