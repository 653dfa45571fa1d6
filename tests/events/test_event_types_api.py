"""GET /api/v1/event-types: the catalogue, for any valid key."""

import pytest

from events.models import EventType

URL = "/api/v1/event-types"


@pytest.mark.parametrize(
    "scopes",
    [["subscriptions"], ["publish"], ["publish", "subscriptions"]],
    ids=["subscriptions key", "publish key", "key with both scopes"],
)
def test_any_valid_key_lists_the_whole_catalogue(make_api, scopes):
    response = make_api("acme", scopes).get(URL)

    assert response.status_code == 200
    catalogue = [
        {
            "name": t.name,
            "subtypes": t.subtypes,
            "terminal": t.terminal,
            "description": t.description,
        }
        for t in EventType.objects.order_by("name")
    ]
    assert response.json() == catalogue
    assert len(catalogue) > 10


def test_it_shows_subtypes_and_the_terminal_flag(api):
    types = {entry["name"]: entry for entry in api.get(URL).json()}

    assert types["DELIVERED"]["terminal"] is True
    assert types["DELIVERED"]["subtypes"] == []
    assert types["IN_TRANSIT"]["terminal"] is False
    assert "RELEASED" in types["STATUS_CHANGED"]["subtypes"]
    assert types["STATUS_CHANGED"]["description"]


def test_a_type_added_by_an_operator_is_listed_at_once(api):
    EventType.objects.create(
        name="PARCEL_LOST", subtypes=["IN_DEPOT"], terminal=True, description=""
    )

    types = {entry["name"]: entry for entry in api.get(URL).json()}

    assert types["PARCEL_LOST"] == {
        "name": "PARCEL_LOST",
        "subtypes": ["IN_DEPOT"],
        "terminal": True,
        "description": "",
    }


def test_the_catalogue_needs_a_key(client, db):
    response = client.get(URL)

    assert response.status_code == 401
    assert response.json()["status"] == "401"


def test_the_catalogue_is_read_only(api):
    response = api.post(URL, {"name": "X"}, format="json")

    assert response.status_code == 405
    assert not EventType.objects.filter(name="X").exists()
