"""The operator's admin pages for event types and events."""

import json

import pytest

from events.models import Event, EventType
from events.services import publish_event
from tests.support.factories import ClientFactory

EVENTS = "/admin/events/event/"
TYPES = "/admin/events/eventtype/"


@pytest.fixture
def events(platform):
    ClientFactory(name="acme")
    return {
        "tenant": publish_event(
            publisher=platform,
            type="STATUS_CHANGED",
            subtype="RELEASED",
            tenant="acme",
            resource_id="DECL-7",
            payload={},
        ).event,
        "public": publish_event(
            publisher=platform, type="DELIVERED", resource_id="PKG-9", payload={}
        ).event,
    }


def _listed(response) -> set[str]:
    return {str(event.pk) for event in response.context["cl"].result_list}


def test_the_event_list_shows_every_event(admin_client, events):
    response = admin_client.get(EVENTS)

    assert response.status_code == 200
    assert _listed(response) == {str(e.pk) for e in events.values()}
    assert b"DECL-7" in response.content and b"platform" in response.content


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        pytest.param(lambda e: str(e["tenant"].pk), {"tenant"}, id="by id"),
        pytest.param(lambda e: "PKG-9", {"public"}, id="by resource_id"),
        pytest.param(lambda e: "STATUS_CHANGED", {"tenant"}, id="by type"),
        pytest.param(lambda e: "no-such-thing", set(), id="nothing found"),
    ],
)
def test_events_can_be_found_by_id_type_or_resource(
    admin_client, events, term, expected
):
    response = admin_client.get(EVENTS, {"q": term(events)})

    assert response.status_code == 200
    assert _listed(response) == {str(events[name].pk) for name in expected}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param(lambda e: {"type": "DELIVERED"}, {"public"}, id="by type"),
        pytest.param(
            lambda e: {"tenant__id__exact": e["tenant"].tenant_id},
            {"tenant"},
            id="by tenant",
        ),
    ],
)
def test_events_can_be_filtered_by_type_and_tenant(
    admin_client, events, params, expected
):
    response = admin_client.get(EVENTS, params(events))

    assert response.status_code == 200
    assert _listed(response) == {str(events[name].pk) for name in expected}


def test_an_event_is_read_only(admin_client, events):
    event = events["tenant"]
    url = f"{EVENTS}{event.pk}/change/"

    page = admin_client.get(url)
    admin_client.post(url, {"type": "DELIVERED", "resource_id": "X"})

    assert page.status_code == 200
    assert b"DECL-7" in page.content
    event.refresh_from_db()
    assert (event.type, event.resource_id) == ("STATUS_CHANGED", "DECL-7")
    assert admin_client.get(f"{EVENTS}add/").status_code == 403
    assert admin_client.post(f"{EVENTS}{event.pk}/delete/").status_code == 403
    assert Event.objects.filter(pk=event.pk).exists()


def test_an_operator_adds_an_event_type_that_can_then_be_published(
    admin_client, platform
):
    response = admin_client.post(
        f"{TYPES}add/",
        {
            "name": "PARCEL_LOST",
            "subtypes": json.dumps(["IN_DEPOT", "IN_TRANSIT"]),
            "terminal": "on",
            "description": "The parcel cannot be found.",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    added = EventType.objects.get(name="PARCEL_LOST")
    assert added.subtypes == ["IN_DEPOT", "IN_TRANSIT"]
    assert added.terminal is True
    result = publish_event(
        publisher=platform, type="PARCEL_LOST", subtype="IN_DEPOT", payload={}
    )
    assert result.created


def test_an_operator_edits_an_event_type(admin_client):
    event_type = EventType.objects.get(name="DEVIATION")

    response = admin_client.post(
        f"{TYPES}{event_type.pk}/change/",
        {
            "name": "DEVIATION",
            "subtypes": json.dumps(["DELAY", "DAMAGE"]),
            "description": "Delayed or damaged.",
        },
    )

    assert response.status_code == 302
    event_type.refresh_from_db()
    assert event_type.subtypes == ["DELAY", "DAMAGE"]
    assert event_type.terminal is False
    assert event_type.description == "Delayed or damaged."


def test_the_event_type_list_loads(admin_client):
    response = admin_client.get(TYPES)

    assert response.status_code == 200
    assert b"STATUS_CHANGED" in response.content
