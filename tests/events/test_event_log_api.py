"""GET /api/v1/events/{id}: the event log, and who may see which deliveries."""

import uuid
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from delivery.models import Delivery
from events.services import publish_event
from subscriptions.models import ApiKey
from tests.support.rows import earlier

PKG = "PKG1"


def _url(event_id) -> str:
    return f"/api/v1/events/{event_id}"


@pytest.fixture
def public_event(publisher_api, subscribe, api, other_api):
    """A public event about PKG1, tracked by acme (twice) and globex."""
    acme = api.client_obj
    globex = other_api.client_obj
    subscriptions = {
        "acme_1": subscribe(acme, tracking_id=PKG, created_at=earlier()),
        "acme_2": subscribe(acme, tracking_id=PKG, created_at=earlier()),
        "globex": subscribe(globex, tracking_id=PKG, created_at=earlier()),
    }
    result = publish_event(
        publisher=publisher_api.client_obj,
        type="DELIVERED",
        resource_id=PKG,
        resource_url=f"https://platform.example.com/api/parcels/{PKG}",
        user_id="u-42",
        payload={"status": "delivered"},
        occurred_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
    )
    assert result.deliveries == 3
    result.event.subscriptions = subscriptions
    return result.event


def _webhook_ids(response) -> set[str]:
    return {delivery["webhook_id"] for delivery in response.json()["deliveries"]}


def test_the_publisher_sees_the_event_and_every_delivery(publisher_api, public_event):
    response = publisher_api.get(_url(public_event.id))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert {key: body[key] for key in body if key != "deliveries"} == {
        "id": str(public_event.id),
        "type": "DELIVERED",
        "subtype": None,
        "resource_id": PKG,
        "resource_url": f"https://platform.example.com/api/parcels/{PKG}",
        "user_id": "u-42",
        "tenant": None,
        "payload": {"status": "delivered"},
        "occurred_at": "2026-11-22T10:00:00Z",
        "created": public_event.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert _webhook_ids(response) == {
        str(s.id) for s in public_event.subscriptions.values()
    }


def test_each_delivery_shows_its_status_attempts_and_last_result(
    publisher_api, public_event
):
    failing = public_event.subscriptions["globex"]
    Delivery.objects.filter(event=public_event, subscription=failing).update(
        attempts_count=3, last_status_code=503, last_error="Service Unavailable"
    )

    response = publisher_api.get(_url(public_event.id))

    rows = {row["webhook_id"]: row for row in response.json()["deliveries"]}
    delivery = Delivery.objects.get(event=public_event, subscription=failing)
    assert rows[str(failing.id)] == {
        "id": str(delivery.id),
        "webhook_id": str(failing.id),
        "status": "pending",
        "attempts_count": 3,
        "last_status_code": 503,
        "last_error": "Service Unavailable",
    }
    untouched = rows[str(public_event.subscriptions["acme_1"].id)]
    assert (untouched["attempts_count"], untouched["last_status_code"]) == (0, None)
    assert untouched["last_error"] is None


def test_a_subscriptions_client_sees_only_its_own_deliveries(api, public_event):
    response = api.get(_url(public_event.id))

    assert response.status_code == 200
    assert _webhook_ids(response) == {
        str(public_event.subscriptions["acme_1"].id),
        str(public_event.subscriptions["acme_2"].id),
    }


def test_a_subscriptions_client_without_deliveries_of_the_event_gets_404(
    make_api, public_event
):
    initech = make_api("initech", ["subscriptions"])

    response = initech.get(_url(public_event.id))

    assert response.status_code == 404
    assert response.json()["status"] == "404"


def test_another_publisher_gets_404(make_api, public_event):
    carrier = make_api("carrier", ["publish"])

    assert carrier.get(_url(public_event.id)).status_code == 404


def test_a_publish_key_of_a_subscribed_client_does_not_see_its_deliveries(
    make_api, api, public_event
):
    """Its publish scope does not cover events it did not publish, and it has no
    subscriptions scope to see its own deliveries with."""
    acme_publisher = make_api("acme", ["publish"])

    assert acme_publisher.get(_url(public_event.id)).status_code == 404


def test_a_key_with_both_scopes_sees_its_own_deliveries_of_others_events(
    make_api, api, public_event
):
    acme_both = make_api("acme", ["publish", "subscriptions"])

    response = acme_both.get(_url(public_event.id))

    assert response.status_code == 200
    assert len(response.json()["deliveries"]) == 2


def test_a_key_with_both_scopes_sees_every_delivery_of_its_own_events(
    make_api, subscribe
):
    acme_both = make_api("acme", ["publish", "subscriptions"])
    own = subscribe("acme", tracking_id=PKG, created_at=earlier())
    others = subscribe("globex", tracking_id=PKG, created_at=earlier())
    event = publish_event(
        publisher=acme_both.client_obj, type="DELIVERED", resource_id=PKG, payload={}
    ).event

    response = acme_both.get(_url(event.id))

    assert response.status_code == 200
    assert _webhook_ids(response) == {str(own.id), str(others.id)}


def test_the_publisher_sees_an_event_that_reached_nobody(publisher_api):
    event = publish_event(
        publisher=publisher_api.client_obj, type="DELIVERED", payload={}
    ).event

    response = publisher_api.get(_url(event.id))

    assert response.status_code == 200
    assert response.json()["deliveries"] == []


def test_a_tenant_event_names_its_tenant(publisher_api, api, subscribe):
    subscribe(api.client_obj, ["STATUS_CHANGED"], created_at=earlier())
    event = publish_event(
        publisher=publisher_api.client_obj,
        type="STATUS_CHANGED",
        subtype="RELEASED",
        tenant="acme",
        payload={},
    ).event

    body = api.get(_url(event.id)).json()

    assert (body["tenant"], body["subtype"]) == ("acme", "RELEASED")


def test_a_delivery_of_a_deleted_webhook_stays_in_the_log(publisher_api, public_event):
    public_event.subscriptions["globex"].delete()

    response = publisher_api.get(_url(public_event.id))

    assert len(response.json()["deliveries"]) == 3
    assert None in _webhook_ids(response)


def test_the_subscriber_of_a_deleted_webhook_still_sees_its_delivery(
    other_api, public_event
):
    public_event.subscriptions["globex"].delete()

    response = other_api.get(_url(public_event.id))

    assert response.status_code == 200
    assert _webhook_ids(response) == {None}


@pytest.mark.parametrize(
    "event_id",
    [
        pytest.param("not-a-uuid", id="not a uuid"),
        pytest.param("12345", id="a number"),
        pytest.param(str(uuid.uuid4()), id="an unknown uuid"),
    ],
)
def test_an_unknown_or_malformed_id_is_a_404(publisher_api, event_id):
    response = publisher_api.get(_url(event_id))

    assert response.status_code == 404
    assert response.json()["status"] == "404"


def test_the_event_id_may_be_written_in_capitals(publisher_api, public_event):
    response = publisher_api.get(_url(str(public_event.id).upper()))

    assert response.status_code == 200


def test_the_event_log_needs_a_key(client, public_event):
    response = client.get(_url(public_event.id))

    assert response.status_code == 401
    assert response.json()["status"] == "401"


def test_a_revoked_key_sees_nothing(publisher_api, public_event):
    ApiKey.objects.filter(client=publisher_api.client_obj).update(
        revoked_at=timezone.now()
    )

    assert publisher_api.get(_url(public_event.id)).status_code == 401


def test_the_event_log_is_read_only(publisher_api, public_event):
    response = publisher_api.delete(_url(public_event.id))

    assert response.status_code == 405
    assert public_event.deliveries.count() == 3


# --- lookup by the publisher's own id ------------------------------------------


def test_each_tenant_finds_its_own_event_by_its_publisher_id(make_api, subscribe):
    acme = make_api("acme", ["publish", "subscriptions"])
    globex = make_api("globex", ["publish", "subscriptions"])
    initech = make_api("initech", ["publish", "subscriptions"])
    ids = {}
    for tenant in (acme, globex):
        subscribe(tenant.client_obj, created_at=earlier())
        name = tenant.client_obj.name
        response = tenant.post(
            "/api/v1/events",
            {"id": "order-1", "type": "DELIVERED", "tenant": name, "payload": {}},
            format="json",
        )
        assert response.status_code == 202, response.json()
        ids[name] = response.json()["id"]
    assert ids["acme"] != ids["globex"]
    acme.post(
        "/api/v1/events",
        {"id": "order-2", "type": "DELIVERED", "tenant": "acme", "payload": {}},
        format="json",
    )

    for tenant in (acme, globex):
        response = tenant.get(_url("order-1"))
        assert response.status_code == 200, response.json()
        assert response.json()["id"] == ids[tenant.client_obj.name]
        assert response.json()["tenant"] == tenant.client_obj.name
        assert len(response.json()["deliveries"]) == 1
    for stranger, publisher_id in ((initech, "order-1"), (globex, "order-2")):
        response = stranger.get(_url(publisher_id))
        assert response.status_code == 404
        assert response.json()["status"] == "404"


def test_a_subscriber_finds_an_event_sent_to_it_by_the_publisher_id(
    publisher_api, api, other_api, subscribe
):
    subscribe(api.client_obj, created_at=earlier())
    subscribe(other_api.client_obj, created_at=earlier())
    event = publish_event(
        publisher=publisher_api.client_obj,
        type="DELIVERED",
        tenant="acme",
        idempotency_key="ship-9",
        payload={},
    ).event

    assert api.get(_url("ship-9")).json()["id"] == str(event.id)
    assert publisher_api.get(_url("ship-9")).json()["id"] == str(event.id)
    assert other_api.get(_url("ship-9")).status_code == 404


def test_our_uuid_wins_over_a_publisher_id_that_looks_like_one(publisher_api, make_api):
    ours = publish_event(
        publisher=publisher_api.client_obj, type="DELIVERED", payload={}
    ).event
    shadow = publish_event(
        publisher=publisher_api.client_obj,
        type="DELIVERED",
        idempotency_key=str(ours.id),
        payload={},
    ).event
    carrier = make_api("carrier", ["publish"])
    theirs = publish_event(
        publisher=carrier.client_obj,
        type="DELIVERED",
        idempotency_key=str(ours.id),
        payload={},
    ).event

    assert publisher_api.get(_url(ours.id)).json()["id"] == str(ours.id)
    assert publisher_api.get(_url(shadow.id)).json()["id"] == str(shadow.id)
    # The carrier may not see our event: its own id names its own event.
    assert carrier.get(_url(ours.id)).json()["id"] == str(theirs.id)
