"""WEBHOOK_MAX_FANOUT (issue 19): an event that would create more deliveries
than the quota is a 409 naming it, and nothing of the request is written;
on PostgreSQL it is checked inside the publish statement (no other round
trip). Transactional: the refused statement aborts the transaction it is in."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from delivery.models import Delivery
from events.models import Event
from tests.support.api import assert_envelope
from tests.support.rows import earlier

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("transactional_db"),  # re-seeds the event types
]


def _post(api, url, body):
    return api.post(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def three_webhooks(subscribe, settings):
    settings.WEBHOOK_MAX_FANOUT = 2
    for _ in range(3):
        subscribe("acme", created_at=earlier())
    subscribe("globex", created_at=earlier())


def test_an_event_over_the_fanout_quota_is_a_409_and_writes_nothing(
    publisher_api, three_webhooks, sql_path
):
    response = _post(
        publisher_api, "/api/v1/events", {"type": "DELIVERED", "tenant": "acme"}
    )

    body = assert_envelope(response, 409)
    assert "WEBHOOK_MAX_FANOUT (2)" in body["reason"]
    assert "3 deliveries" in body["reason"]
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()


def test_an_event_at_the_quota_is_published(publisher_api, three_webhooks, settings):
    settings.WEBHOOK_MAX_FANOUT = 3

    response = _post(
        publisher_api, "/api/v1/events", {"type": "DELIVERED", "tenant": "acme"}
    )

    assert response.status_code == 202, response.json()
    assert response.json()["deliveries"] == 3


def test_a_batch_with_one_event_over_the_quota_is_a_409_naming_it(
    publisher_api, three_webhooks, sql_path
):
    events = [
        {"type": "DELIVERED", "tenant": "globex", "payload": {}},
        {"type": "DELIVERED", "tenant": "acme", "payload": {}},
    ]

    response = _post(publisher_api, "/batch/api/v1/events", {"events": events})

    body = assert_envelope(response, 409)
    assert body["reason"].startswith("events.1: Fan-out quota exceeded")
    assert "WEBHOOK_MAX_FANOUT" in body["reason"]
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()


def test_the_quota_costs_no_round_trip_of_its_own(
    publisher_api, three_webhooks, settings
):
    settings.WEBHOOK_MAX_FANOUT = 3
    body = {"type": "DELIVERED", "tenant": "acme"}
    # Warms the lookup caches and prepares the statement on this connection.
    assert _post(publisher_api, "/api/v1/events", body).status_code == 202

    settings.WEBHOOK_MAX_FANOUT = 2
    with CaptureQueriesContext(connection) as refused:
        response = _post(publisher_api, "/api/v1/events", body)

    assert response.status_code == 409
    # The key, type and tenant are cached: the publish statement alone ran.
    assert [query["sql"].split()[0] for query in refused] == ["EXECUTE"]
    assert Event.objects.count() == 1
