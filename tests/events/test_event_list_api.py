"""GET /api/v1/events: the events a key may see, filters, summaries, pages."""

from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Delivery
from events.models import Event
from events.services import publish_event
from tests.support.api import assert_envelope
from tests.support.rows import earlier

URL = "/api/v1/events"


@pytest.fixture
def webhooks(subscribe, api, other_api):
    """acme has two tenant webhooks, globex one (DELIVERED and IN_TRANSIT)."""
    groups = ("DELIVERED", "IN_TRANSIT")
    return {
        "acme_1": subscribe(api.client_obj, groups, created_at=earlier()),
        "acme_2": subscribe(api.client_obj, groups, created_at=earlier()),
        "globex": subscribe(other_api.client_obj, groups, created_at=earlier()),
    }


def _publish(publisher_api, tenant, **fields) -> Event:
    fields.setdefault("type", "DELIVERED")
    fields.setdefault("payload", {"n": 1})
    return publish_event(
        publisher=publisher_api.client_obj, tenant=tenant.name, **fields
    ).event


def _ids(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [event["id"] for event in response.json()["results"]]


def test_a_subscriptions_key_sees_the_events_that_reached_its_webhooks_newest_first(
    api, other_api, publisher_api, webhooks
):
    first = _publish(publisher_api, api.client_obj, resource_id="A")
    _publish(publisher_api, other_api.client_obj, resource_id="B")
    second = _publish(publisher_api, api.client_obj, resource_id="C")

    response = api.get(URL)

    assert _ids(response) == [str(second.id), str(first.id)]
    assert response.json()["next"] is None


def test_each_event_has_the_shape_of_the_event_log_and_counts_the_callers_deliveries(
    api, publisher_api, webhooks
):
    event = _publish(publisher_api, api.client_obj, resource_id="PKG1", user_id="u")
    Delivery.objects.filter(event=event, subscription=webhooks["acme_1"]).update(
        status=Delivery.Status.FAILED
    )

    [body] = api.get(URL).json()["results"]

    assert body["id"] == str(event.id)
    assert body["type"] == "DELIVERED"
    assert body["resource_id"] == "PKG1"
    assert body["tenant"] == "acme"
    assert body["payload"] == {"n": 1}
    assert set(body) == {
        "id",
        "type",
        "subtype",
        "resource_id",
        "resource_url",
        "user_id",
        "tenant",
        "payload",
        "occurred_at",
        "created",
        "deliveries",
    }
    assert body["deliveries"] == {
        "total": 2,
        "pending": 1,
        "held": 0,
        "succeeded": 0,
        "failed": 1,
        "expired": 0,
        "cancelled": 0,
    }


def test_a_publish_key_sees_the_events_it_sent_with_every_delivery_counted(
    api, other_api, publisher_api, make_api, webhooks
):
    to_acme = _publish(publisher_api, api.client_obj)
    to_globex = _publish(publisher_api, other_api.client_obj)
    nobody = publish_event(
        publisher=publisher_api.client_obj, type="DELIVERED", payload={}
    ).event
    other_publisher = make_api("platform-2", ["publish"])
    _publish(other_publisher, api.client_obj)

    response = publisher_api.get(URL)

    assert _ids(response) == [str(nobody.id), str(to_globex.id), str(to_acme.id)]
    totals = [e["deliveries"]["total"] for e in response.json()["results"]]
    assert totals == [0, 1, 2]


def test_another_tenants_events_and_deliveries_are_never_shown(
    api, other_api, publisher_api, webhooks
):
    _publish(publisher_api, api.client_obj)

    assert _ids(other_api.get(URL)) == []


def test_a_public_event_counts_only_the_callers_own_deliveries(
    api, other_api, publisher_api, subscribe
):
    subscribe(api.client_obj, tracking_id="PKG", created_at=earlier())
    subscribe(other_api.client_obj, tracking_id="PKG", created_at=earlier())
    publish_event(
        publisher=publisher_api.client_obj,
        type="DELIVERED",
        resource_id="PKG",
        payload={},
    )

    [seen] = api.get(URL).json()["results"]

    assert seen["deliveries"]["total"] == 1


def test_type_and_resource_id_filter_the_events(api, publisher_api, webhooks):
    delivered = _publish(publisher_api, api.client_obj, resource_id="A")
    _publish(publisher_api, api.client_obj, resource_id="B")
    in_transit = _publish(
        publisher_api, api.client_obj, type="IN_TRANSIT", resource_id="A"
    )

    assert _ids(api.get(URL, {"type": "IN_TRANSIT"})) == [str(in_transit.id)]
    assert _ids(api.get(URL, {"resource_id": "A"})) == [
        str(in_transit.id),
        str(delivered.id),
    ]
    assert _ids(api.get(URL, {"type": "DELIVERED", "resource_id": "A"})) == [
        str(delivered.id)
    ]


def test_since_is_inclusive_and_until_exclusive_on_the_publish_time(
    api, publisher_api, webhooks
):
    events = [_publish(publisher_api, api.client_obj) for _ in range(3)]
    base = timezone.now() - timedelta(hours=3)
    for hours, event in enumerate(events):
        Event.objects.filter(pk=event.pk).update(
            created_at=base + timedelta(hours=hours)
        )
    middle = (base + timedelta(hours=1)).isoformat()
    last = (base + timedelta(hours=2)).isoformat()

    assert _ids(api.get(URL, {"since": middle})) == [
        str(events[2].id),
        str(events[1].id),
    ]
    assert _ids(api.get(URL, {"until": middle})) == [str(events[0].id)]
    assert _ids(api.get(URL, {"since": middle, "until": last})) == [str(events[1].id)]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("failed", ["failed"]),
        ("expired", ["expired"]),
        ("pending", ["held", "pending"]),
        ("succeeded", ["succeeded"]),
    ],
)
def test_status_keeps_events_with_one_of_the_callers_deliveries_in_it(
    api, publisher_api, webhooks, status, expected
):
    by_status = {}
    for delivery_status in ("pending", "held", "succeeded", "failed", "expired"):
        event = _publish(publisher_api, api.client_obj)
        Delivery.objects.filter(event=event).update(status=delivery_status)
        by_status[str(event.id)] = delivery_status

    found = _ids(api.get(URL, {"status": status}))

    assert sorted(by_status[event_id] for event_id in found) == expected


def test_status_looks_only_at_the_callers_deliveries(
    api, other_api, publisher_api, subscribe
):
    subscribe(api.client_obj, tracking_id="PKG", created_at=earlier())
    subscribe(other_api.client_obj, tracking_id="PKG", created_at=earlier())
    event = publish_event(
        publisher=publisher_api.client_obj,
        type="DELIVERED",
        resource_id="PKG",
        payload={},
    ).event
    Delivery.objects.filter(event=event, client=other_api.client_obj).update(
        status="failed"
    )

    assert _ids(api.get(URL, {"status": "failed"})) == []
    assert _ids(other_api.get(URL, {"status": "failed"})) == [str(event.id)]
    assert _ids(publisher_api.get(URL, {"status": "failed"})) == [str(event.id)]


def test_pages_follow_the_cursor_to_the_end_without_gaps_or_repeats(
    api, publisher_api, webhooks
):
    events = [_publish(publisher_api, api.client_obj) for _ in range(5)]
    same_time = timezone.now() - timedelta(minutes=1)
    # Ties on created_at are broken by id.
    Event.objects.filter(pk__in=[e.pk for e in events[:3]]).update(created_at=same_time)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get(URL, query).json()
        seen += [e["id"] for e in body["results"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break

    assert pages == 3
    assert sorted(seen) == sorted(str(e.id) for e in events)
    assert len(seen) == len(set(seen))
    assert _ids(api.get(URL)) == seen


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01T00:00:00Z"}, "until"),
        ({"status": "lost"}, "status"),
        ({"status": "held"}, "status"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "until"),
    ],
)
def test_a_bad_query_parameter_is_a_400_naming_it(api, query, field):
    payload = assert_envelope(api.get(URL, query), 400)

    assert list(payload["errors"]) == [field]


def test_without_a_key_the_list_is_a_401(client, db):
    assert_envelope(client.get(URL), 401)


def test_a_subscriptions_key_may_list_but_still_not_publish(api):
    assert api.get(URL).status_code == 200
    assert_envelope(api.post(URL, {"type": "DELIVERED"}, format="json"), 403)
