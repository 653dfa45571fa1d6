"""POST /batch/api/v1/events: several events in one request, all or none."""

import json

import pytest

from delivery.models import Delivery
from events.models import Event
from events.services import publish_events
from tests.support.api import assert_envelope
from tests.support.rows import earlier

URL = "/batch/api/v1/events"


def _post(api, body, **headers):
    return api.post(URL, json.dumps(body), content_type="application/json", **headers)


def test_each_event_is_routed_and_answered_in_order(
    publisher_api, subscribe, woken, django_capture_on_commit_callbacks
):
    subscribe("acme", created_at=earlier())
    subscribe("acme", created_at=earlier(), status="paused")
    subscribe("globex", created_at=earlier(), tracking_id="PKG2")
    events = [
        {"type": "DELIVERED", "tenant": "acme", "payload": {"n": 0}},
        {"type": "DELIVERED", "resource_id": "PKG2", "payload": {"n": 1}},
        {"type": "DELIVERED", "resource_id": "NOBODY", "payload": {"n": 2}},
    ]

    with django_capture_on_commit_callbacks(execute=True):
        response = _post(publisher_api, {"events": events})

    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) == {"events", "deliveries"}
    assert [item["deliveries"] for item in body["events"]] == [2, 1, 0]
    assert [item["created"] for item in body["events"]] == [True, True, True]
    assert body["deliveries"] == 3
    for item, sent in zip(body["events"], events, strict=True):
        assert Event.objects.get(pk=item["id"]).payload == sent["payload"]
    assert Delivery.objects.filter(status="held").count() == 1
    # One wake-up call for the whole batch, for the due deliveries only.
    assert woken == [2]


def test_an_invalid_event_writes_nothing_and_is_named_by_position(
    publisher_api, subscribe
):
    subscribe("acme", created_at=earlier())
    events = [
        {"type": "DELIVERED", "tenant": "acme"},
        {"type": "DELIVERED", "tenant": "no-such-tenant"},
    ]

    body = assert_envelope(_post(publisher_api, {"events": events}), 400)

    assert body["errors"] == {"events.1.tenant": ["no tenant named 'no-such-tenant'"]}
    assert Event.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_a_field_error_names_the_event(publisher_api):
    events = [{"type": "DELIVERED"}, {"type": 7}, {"type": "DELIVERED", "colour": 1}]

    body = assert_envelope(_post(publisher_api, {"events": events}), 400)

    assert set(body["errors"]) == {"events.1.type", "events.2.colour"}
    assert Event.objects.count() == 0


def test_a_payload_over_the_limit_is_a_413_and_nothing_is_written(
    publisher_api, settings
):
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 100
    events = [{"type": "DELIVERED"}, {"type": "DELIVERED", "payload": {"x": "y" * 200}}]

    body = assert_envelope(_post(publisher_api, {"events": events}), 413)

    assert body["reason"].startswith("events.1.payload:")
    assert Event.objects.count() == 0


def test_ids_make_each_event_idempotent(publisher_api, subscribe):
    subscribe("acme", created_at=earlier())
    first = _post(
        publisher_api, {"events": [{"id": "a", "type": "DELIVERED", "tenant": "acme"}]}
    )
    assert first.status_code == 202

    again = _post(
        publisher_api,
        {
            "events": [
                {"id": "a", "type": "DELIVERED", "tenant": "acme"},
                {"id": "b", "type": "DELIVERED", "tenant": "acme"},
                {"id": "b", "type": "DELIVERED", "tenant": "acme"},
            ]
        },
    )

    assert again.status_code == 202, again.json()
    items = again.json()["events"]
    assert items[0] == {**first.json()["events"][0], "created": False}
    assert [item["created"] for item in items] == [False, True, False]
    assert items[1]["id"] == items[2]["id"]
    assert again.json()["deliveries"] == 1
    assert Event.objects.count() == 2
    assert Delivery.objects.count() == 2


def test_a_batch_of_repeats_answers_200(publisher_api):
    events = [{"id": "a", "type": "DELIVERED"}]
    assert _post(publisher_api, {"events": events}).status_code == 202

    response = _post(publisher_api, {"events": events})

    assert response.status_code == 200
    assert response.json()["events"][0]["created"] is False


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param({"events": []}, "events", id="empty"),
        pytest.param({"events": [{"type": "DELIVERED"}] * 1001}, "events", id="1001"),
        pytest.param({"events": {"type": "DELIVERED"}}, "events", id="not a list"),
        pytest.param({"events": ["DELIVERED"]}, "events.0", id="not an object"),
        pytest.param([{"type": "DELIVERED"}], "body", id="a bare list"),
        pytest.param({"events": [], "extra": 1}, "extra", id="unknown field"),
        pytest.param({}, "events", id="missing"),
    ],
)
def test_a_malformed_batch_is_a_400(publisher_api, body, path):
    body = assert_envelope(_post(publisher_api, body), 400)

    assert path in body["errors"], body
    assert Event.objects.count() == 0


def test_an_idempotency_key_header_is_refused(publisher_api):
    response = _post(
        publisher_api, {"events": [{"type": "DELIVERED"}]}, HTTP_IDEMPOTENCY_KEY="k"
    )

    body = assert_envelope(response, 400)
    assert "Idempotency-Key" in body["errors"]
    assert Event.objects.count() == 0


def test_the_publish_scope_is_needed(api):
    assert_envelope(_post(api, {"events": [{"type": "DELIVERED"}]}), 403)


def test_a_batch_costs_a_few_statements_not_a_few_per_event(
    platform, subscribe, django_assert_max_num_queries
):
    for n in range(5):
        subscribe("acme", created_at=earlier(), tracking_id=f"PKG{n}")
    events = [
        {"type": "DELIVERED", "resource_id": f"PKG{n % 5}", "payload": {"n": n}}
        for n in range(500)
    ]

    # The type lookup, one INSERT of the events, one INSERT … SELECT of their
    # deliveries, and two savepoints (the test's transaction holds the outer one).
    with django_assert_max_num_queries(7):
        results = publish_events(publisher=platform, events=events)

    assert [result.deliveries for result in results] == [1] * 500
    assert Delivery.objects.count() == 500
    for n in range(5):
        # Each delivery goes to the webhook tracking its event's resource.
        assert (
            Delivery.objects.filter(
                subscription__tracking_id=f"PKG{n}", event__resource_id=f"PKG{n}"
            ).count()
            == 100
        )


def test_events_of_one_type_about_several_resources_each_reach_their_own(
    platform, subscribe, sql_path
):
    every = subscribe("acme", created_at=earlier())
    acme_pkg1 = subscribe("acme", created_at=earlier(), tracking_id="PKG1")
    acme_pkg2 = subscribe("acme", created_at=earlier(), tracking_id="PKG2")
    globex_pkg1 = subscribe("globex", created_at=earlier(), tracking_id="PKG1")
    events = [
        {"type": "DELIVERED", "tenant": "acme", "resource_id": "PKG1"},
        {"type": "DELIVERED", "tenant": "acme", "resource_id": "PKG2"},
        {"type": "DELIVERED", "tenant": "acme"},
        {"type": "DELIVERED", "resource_id": "PKG1"},
        {"type": "DELIVERED", "resource_id": "PKG2"},
        {"type": "DELIVERED"},
    ]

    results = publish_events(
        publisher=platform, events=[{**event, "payload": {}} for event in events]
    )

    deliveries = Delivery.objects.values_list("subscription_id", flat=True)
    reached = [set(deliveries.filter(event=r.event)) for r in results]
    assert reached == [
        {every.id, acme_pkg1.id},
        {every.id, acme_pkg2.id},
        {every.id},
        {acme_pkg1.id, globex_pkg1.id},
        {acme_pkg2.id},
        set(),
    ]
    assert [r.deliveries for r in results] == [len(ids) for ids in reached]
