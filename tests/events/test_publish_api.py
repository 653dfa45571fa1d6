"""POST /api/v1/events (docs/api.md, "Events")."""

import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from delivery.models import Delivery
from events.models import Event
from tests.support.rows import earlier

URL = "/api/v1/events"


def _post(api, body, **headers):
    return api.post(URL, json.dumps(body), content_type="application/json", **headers)


def _assert_envelope(response, status):
    body = response.json()
    assert response.status_code == status, body
    assert set(body) <= {"uuid", "status", "reason", "errors"}
    assert body["status"] == str(status)
    assert body["uuid"] and body["reason"]
    return body


def test_publishing_answers_202_with_the_event_id_and_delivery_count(
    publisher_api, subscribe
):
    subscribe("acme", created_at=earlier())
    subscribe("acme", created_at=earlier(), tracking_id="PKG1")

    response = _post(
        publisher_api,
        {
            "type": "DELIVERED",
            "subtype": None,
            "resource_id": "PKG1",
            "user_id": "u-42",
            "resource_url": "https://platform.example.com/api/parcels/PKG1",
            "tenant": "acme",
            "payload": {"status": "delivered"},
            "occurred_at": "2026-11-22T10:00:00Z",
        },
    )

    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) == {"id", "deliveries"}
    assert body["deliveries"] == 2
    event = Event.objects.get(pk=uuid.UUID(body["id"]))
    assert event.publisher == publisher_api.client_obj
    assert event.tenant.name == "acme"
    assert event.occurred_at.isoformat() == "2026-11-22T10:00:00+00:00"
    assert event.payload == {"status": "delivered"}
    assert Delivery.objects.filter(event=event).count() == 2


def test_only_type_is_required(publisher_api):
    response = _post(publisher_api, {"type": "DELIVERED"})

    assert response.status_code == 202, response.json()
    event = Event.objects.get(pk=response.json()["id"])
    assert event.payload == {}
    assert event.tenant is None
    assert abs(event.occurred_at - timezone.now()) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("body_id", "header"),
    [
        pytest.param("order-1", None, id="id in the body"),
        pytest.param(None, "order-1", id="Idempotency-Key header"),
        pytest.param("order-1", "order-1", id="both, equal"),
    ],
)
def test_a_repeat_answers_200_with_the_same_event_and_creates_nothing(
    publisher_api, subscribe, body_id, header
):
    subscribe("acme", created_at=earlier())
    body = {"type": "DELIVERED", "tenant": "acme"}
    if body_id:
        body["id"] = body_id
    headers = {"HTTP_IDEMPOTENCY_KEY": header} if header else {}

    first = _post(publisher_api, body, **headers)
    subscribe("acme", created_at=earlier())
    second = _post(publisher_api, body, **headers)

    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == first.json() == {"id": first.json()["id"], "deliveries": 1}
    assert Event.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_the_body_id_and_the_header_are_one_key(publisher_api):
    first = _post(publisher_api, {"type": "DELIVERED", "id": "order-1"})
    second = _post(publisher_api, {"type": "DELIVERED"}, HTTP_IDEMPOTENCY_KEY="order-1")

    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json()["id"] == first.json()["id"]


def test_the_same_key_from_another_publisher_is_another_event(publisher_api, make_api):
    carrier = make_api("carrier", ["publish"])

    first = _post(publisher_api, {"type": "DELIVERED", "id": "order-1"})
    second = _post(carrier, {"type": "DELIVERED", "id": "order-1"})

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] != second.json()["id"]


BAD_REQUESTS = [
    pytest.param({}, {}, "type", id="missing type"),
    pytest.param({"type": None}, {}, "type", id="null type"),
    pytest.param({"type": ""}, {}, "type", id="blank type"),
    pytest.param({"type": "T" * 65}, {}, "type", id="type over 64"),
    pytest.param({"type": "NO_SUCH_TYPE"}, {}, "type", id="unknown type"),
    pytest.param({"type": "TEST"}, {}, "type", id="reserved TEST type"),
    pytest.param({"type": ["DELIVERED"]}, {}, "type", id="type not a string"),
    pytest.param(
        {"type": "STATUS_CHANGED", "subtype": "EATEN"},
        {},
        "subtype",
        id="unknown subtype",
    ),
    pytest.param(
        {"type": "STATUS_CHANGED", "subtype": "S" * 65},
        {},
        "subtype",
        id="subtype over 64",
    ),
    pytest.param(
        {"type": "DELIVERED", "subtype": "RELEASED"},
        {},
        "subtype",
        id="subtype on a type without subtypes",
    ),
    pytest.param(
        {"type": "DELIVERED", "resource_id": "r" * 129},
        {},
        "resource_id",
        id="resource_id over 128",
    ),
    pytest.param(
        {"type": "DELIVERED", "user_id": "u" * 129},
        {},
        "user_id",
        id="user_id over 128",
    ),
    pytest.param(
        {"type": "DELIVERED", "resource_url": "https://x.example/" + "p" * 483},
        {},
        "resource_url",
        id="resource_url over 500",
    ),
    pytest.param(
        {"type": "DELIVERED", "resource_url": "ftp://x.example/file"},
        {},
        "resource_url",
        id="resource_url not http",
    ),
    pytest.param(
        {"type": "DELIVERED", "resource_url": "not a url"},
        {},
        "resource_url",
        id="resource_url not a url",
    ),
    pytest.param(
        {"type": "DELIVERED", "tenant": "t" * 41},
        {},
        "tenant",
        id="tenant over 40",
    ),
    pytest.param(
        {"type": "DELIVERED", "tenant": "nobody"},
        {},
        "tenant",
        id="unknown tenant",
    ),
    pytest.param(
        {"type": "DELIVERED", "payload": [1, 2]},
        {},
        "payload",
        id="payload a list",
    ),
    pytest.param(
        {"type": "DELIVERED", "payload": "text"},
        {},
        "payload",
        id="payload a string",
    ),
    pytest.param(
        {"type": "DELIVERED", "payload": None},
        {},
        "payload",
        id="payload null",
    ),
    pytest.param(
        {"type": "DELIVERED", "payload": {"x": "a\u0000b"}},
        {},
        "payload",
        id="payload with a NUL character",
    ),
    pytest.param(
        {"type": "DELIVERED", "occurred_at": "yesterday"},
        {},
        "occurred_at",
        id="occurred_at not ISO 8601",
    ),
    pytest.param(
        {"type": "DELIVERED", "occurred_at": "2026-13-45T10:00:00Z"},
        {},
        "occurred_at",
        id="occurred_at not a date",
    ),
    pytest.param({"type": "DELIVERED", "id": "k" * 65}, {}, "id", id="id over 64"),
    pytest.param({"type": "DELIVERED", "id": ""}, {}, "id", id="blank id"),
    pytest.param(
        {"type": "DELIVERED"},
        {"HTTP_IDEMPOTENCY_KEY": "k" * 65},
        "Idempotency-Key",
        id="Idempotency-Key over 64",
    ),
    pytest.param(
        {"type": "DELIVERED", "id": "order-1"},
        {"HTTP_IDEMPOTENCY_KEY": "order-2"},
        "Idempotency-Key",
        id="id and Idempotency-Key differ",
    ),
    pytest.param({"type": "DELIVERED", "id": 42}, {}, "id", id="id not a string"),
    pytest.param(
        {"type": "DELIVERED", "tennant": "acme"},
        {},
        "tennant",
        id="an unknown (misspelt) field",
    ),
    pytest.param(
        {"type": "DELIVERED", "resource_id": "a\u0000b"},
        {},
        "resource_id",
        id="NUL character in a field",
    ),
]


@pytest.mark.parametrize(("body", "headers", "field"), BAD_REQUESTS)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    publisher_api, make_api, body, headers, field
):
    make_api("acme", ["subscriptions"])

    response = _post(publisher_api, body, **headers)

    body = _assert_envelope(response, 400)
    assert field in body["errors"], body
    assert body["reason"].startswith(f"{field}: "), body
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"{not json", id="malformed JSON"),
        pytest.param(b'["DELIVERED"]', id="a JSON list"),
        pytest.param(b'"DELIVERED"', id="a JSON string"),
        pytest.param(b'{"type": "DELIVERED", "payload": NaN}', id="NaN"),
        pytest.param(b"[" * 50_000 + b"]" * 50_000, id="nested too deeply"),
        pytest.param(b"\xff\xfe", id="not UTF-8"),
    ],
)
def test_an_unparseable_body_is_a_400(publisher_api, raw):
    response = publisher_api.post(URL, raw, content_type="application/json")

    _assert_envelope(response, 400)
    assert Event.objects.count() == 0


def test_a_body_that_is_not_json_is_a_415(publisher_api):
    response = publisher_api.post(URL, "type=DELIVERED", content_type="text/plain")

    _assert_envelope(response, 415)


def test_a_body_over_the_payload_limit_is_a_413(publisher_api, settings):
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 1024

    response = _post(
        publisher_api, {"type": "DELIVERED", "payload": {"blob": "x" * 2000}}
    )

    body = _assert_envelope(response, 413)
    assert "1024" in body["reason"]
    assert Event.objects.count() == 0


def test_a_body_over_the_request_size_limit_is_a_413(publisher_api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    settings.WEBHOOK_MAX_PAYLOAD_BYTES = 1024 * 1024

    response = _post(
        publisher_api, {"type": "DELIVERED", "payload": {"blob": "x" * 4096}}
    )

    _assert_envelope(response, 413)


def test_publishing_without_a_key_is_a_401(client, db):
    response = client.post(
        URL, json.dumps({"type": "DELIVERED"}), content_type="application/json"
    )

    _assert_envelope(response, 401)
    assert Event.objects.count() == 0


def test_publishing_with_an_unknown_key_is_a_401(client, db):
    response = client.post(
        URL,
        json.dumps({"type": "DELIVERED"}),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer whk_nope",
    )

    _assert_envelope(response, 401)


def test_a_subscriptions_only_key_cannot_publish(api):
    response = _post(api, {"type": "DELIVERED"})

    body = _assert_envelope(response, 403)
    assert "publish" in body["reason"]
    assert Event.objects.count() == 0


def test_a_key_with_both_scopes_can_publish(make_api):
    both = make_api("platform", ["subscriptions", "publish"])

    response = _post(both, {"type": "DELIVERED"})

    assert response.status_code == 202


def test_put_on_the_publish_url_is_a_405(publisher_api):
    # GET lists the events (tests/events/test_event_list_api.py).
    _assert_envelope(publisher_api.put(URL, {}, format="json"), 405)
