"""Hostile input on every API endpoint: every refusal is a 4xx in the error
envelope, and nothing is written (no Subscription, Event, Delivery or Attempt
row appears, changes or goes). tests/subscriptions and tests/events cover the field
limits of each endpoint; this file sweeps what they do not: revoked and
hostile keys, malformed and foreign ids on every route, hostile JSON (deep,
duplicate keys, lone surrogates, NUL, invalid UTF-8, odd charsets) on every
body, and hostile query strings."""

import json
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from delivery.models import Attempt, Delivery
from events.models import Event
from subscriptions.models import Subscription
from subscriptions.services import create_api_key, revoke_api_key
from tests.support.api import assert_envelope
from tests.support.flows import publish

pytestmark = pytest.mark.django_db

SUB, PUB = "subscriptions", "publish"

# (method, path template, scope of the key that may call it)
ENDPOINTS = [
    ("post", "/api/v1/webhooks", SUB),
    ("post", "/batch/api/v1/webhooks", SUB),
    ("get", "/api/v1/webhooks/", SUB),
    ("get", "/api/v1/webhooks/{webhook}", SUB),
    ("delete", "/api/v1/webhooks/{webhook}", SUB),
    ("post", "/api/v1/webhooks/{webhook}/test", SUB),
    ("post", "/api/v1/webhooks/{webhook}/resume", SUB),
    ("post", "/api/v1/webhooks/{webhook}/rotate-secret", SUB),
    ("get", "/api/v1/webhooks/{webhook}/deliveries", SUB),
    ("get", "/api/v1/deliveries/{delivery}", SUB),
    ("post", "/api/v1/deliveries/{delivery}/retry", SUB),
    ("post", "/api/v1/events", PUB),
    ("get", "/api/v1/events/{event}", PUB),
    ("get", "/api/v1/event-types", SUB),
]
ID_ENDPOINTS = [e for e in ENDPOINTS if "{" in e[1]]
BODY_ENDPOINTS = [e for e in ENDPOINTS if e[1].endswith(("webhooks", "events"))]


def _ids(endpoints):
    return [f"{m.upper()} {p}" for m, p, _ in endpoints]


URL = "http://127.0.0.1:9/hooks"
VALID_BODIES = {
    "/api/v1/webhooks": {
        "trackingId": "T-1",
        "event_groups": ["DELIVERED"],
        "configuration": {"url": URL},
    },
    "/batch/api/v1/webhooks": {
        "trackingIds": ["T-1", "T-2"],
        "event_groups": ["DELIVERED"],
        "configuration": {"url": URL},
    },
    "/api/v1/events": {"type": "DELIVERED", "tenant": "acme", "payload": {"n": 1}},
}


@dataclass
class World:
    """Two tenants, each with a webhook, an event and a delivery of it."""

    keys: dict[str, tuple[object, str]]
    mine: dict[str, str]
    theirs: dict[str, str]

    def client(self, scope: str, *, revoked: bool = False) -> APIClient:
        api_key, key = self.keys[scope]
        if revoked:
            revoke_api_key(api_key=api_key)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client


def _tenant(name: str) -> dict[str, str]:
    api_key, key = create_api_key(client_name=name, scopes=[SUB])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.post(
        "/api/v1/webhooks",
        {"event_groups": ["DELIVERED"], "configuration": {"url": f"{URL}/{name}"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    event_id, deliveries = publish(api_key.client)
    assert deliveries == 1
    delivery = Delivery.objects.get(event_id=event_id)
    return {
        "webhook": response.json()["id"],
        "event": event_id,
        "delivery": str(delivery.id),
    }


@pytest.fixture
def world() -> World:
    mine = _tenant("acme")
    theirs = _tenant("globex")
    keys = {
        SUB: create_api_key(client_name="acme", scopes=[SUB]),
        PUB: create_api_key(client_name="platform", scopes=[PUB]),
    }
    return World(keys=keys, mine=mine, theirs=theirs)


def snapshot() -> dict[str, object]:
    """Everything a request could write: counts, and each row's state."""
    return {
        "counts": (
            Subscription.objects.count(),
            Event.objects.count(),
            Delivery.objects.count(),
            Attempt.objects.count(),
        ),
        "subscriptions": sorted(
            Subscription.objects.values_list("id", "status", "secret", "updated_at")
        ),
        "deliveries": sorted(
            Delivery.objects.values_list(
                "id", "status", "attempts_count", "next_attempt_at"
            )
        ),
    }


def call(client: APIClient, method: str, path: str, body: bytes | None = None):
    if method == "get":
        return client.get(path)
    if method == "delete":
        return client.delete(path)
    return client.post(
        path,
        body if body is not None else json.dumps(VALID_BODIES.get(path, {})),
        content_type="application/json",
    )


def assert_refused(response, status: int, before: dict) -> dict:
    payload = assert_envelope(response, status)
    assert snapshot() == before
    return payload


# --- keys ------------------------------------------------------------------------


@pytest.mark.parametrize("method,template,scope", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_a_revoked_key_is_a_401_on_every_endpoint(world, method, template, scope):
    client = world.client(scope, revoked=True)
    before = snapshot()

    response = call(client, method, template.format(**world.mine))

    assert_refused(response, 401, before)
    assert response["WWW-Authenticate"].startswith("Bearer")


HOSTILE_AUTH = [
    pytest.param(lambda key: "Bearer " + "k" * 100_000, id="a 100 kB key"),
    pytest.param(lambda key: f"Bearer {key}\x00", id="the key and a NUL"),
    pytest.param(lambda key: f"Bearer {key[:-1]}", id="the key minus its last char"),
    pytest.param(lambda key: f"Bearer {key}x", id="the key plus a char"),
    # WSGI hands headers over decoded as latin-1: UTF-8 bytes arrive like this.
    pytest.param(
        lambda key: "Bearer " + "whk_\u00e9\u202e\U0001f600".encode().decode("latin-1"),
        id="a UTF-8 key",
    ),
    pytest.param(lambda key: f"Bearer {key[:12]}", id="only the key's prefix"),
    pytest.param(lambda key: f"Basic {key}", id="another scheme"),
    pytest.param(lambda key: f"Bearer {key} {key}", id="the key twice"),
]


@pytest.mark.parametrize("header", HOSTILE_AUTH)
@pytest.mark.parametrize("method,template,scope", ENDPOINTS, ids=_ids(ENDPOINTS))
def test_a_hostile_authorization_header_is_a_401_on_every_endpoint(
    world, method, template, scope, header
):
    _, key = world.keys[scope]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header(key))
    before = snapshot()

    assert_refused(call(client, method, template.format(**world.mine)), 401, before)


# --- ids in paths ----------------------------------------------------------------


@pytest.mark.parametrize("method,template,scope", ID_ENDPOINTS, ids=_ids(ID_ENDPOINTS))
def test_another_tenants_ids_are_a_404_and_their_rows_stay_untouched(
    world, method, template, scope
):
    client = world.client(SUB)  # acme's key, globex's ids
    before = snapshot()

    assert_refused(call(client, method, template.format(**world.theirs)), 404, before)


BAD_IDS = [
    pytest.param("not-a-uuid", id="words"),
    pytest.param("1234", id="a number"),
    pytest.param("x" * 5000, id="5000 characters"),
    pytest.param("%00", id="NUL"),
    pytest.param("%ff%fe", id="invalid UTF-8"),
    pytest.param("%ed%a0%80", id="an encoded lone surrogate"),
    pytest.param("%F0%9F%98%80", id="emoji"),
    pytest.param("%E2%80%AE%E2%80%8F", id="RTL marks"),
    pytest.param("%27%20OR%201%3D1--", id="SQL"),
    pytest.param("{uuid}0", id="a UUID and one char more"),
    pytest.param("{{{uuid}}}", id="a UUID in braces"),
    pytest.param("{uuid}%00", id="a UUID and a NUL"),
    pytest.param("..%2F..%2Fadmin", id="path traversal"),
]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("method,template,scope", ID_ENDPOINTS, ids=_ids(ID_ENDPOINTS))
def test_a_malformed_id_in_the_path_is_a_404(world, method, template, scope, bad):
    client = world.client(scope)
    ids = {name: bad.format(uuid=value) for name, value in world.mine.items()}
    before = snapshot()

    assert_refused(call(client, method, template.format(**ids)), 404, before)


# --- bodies ----------------------------------------------------------------------

DEEP = 10_000
HOSTILE_BODIES = [
    pytest.param(b"[" * DEEP + b"]" * DEEP, id="arrays 10000 deep"),
    pytest.param(b'{"a":' * DEEP + b"1" + b"}" * DEEP, id="objects 10000 deep"),
    pytest.param(b"[" * DEEP, id="10000 unclosed arrays"),
    pytest.param(b'{"payload": ' + b"[" * DEEP + b"]" * DEEP + b"}", id="deep field"),
    pytest.param(b'{"a": "\xff\xfe"}', id="invalid UTF-8"),
    pytest.param(b'{"a": "\xed\xa0\x80"}', id="a UTF-8-encoded surrogate"),
    pytest.param(b"\xef\xbb\xbf{}", id="a byte-order mark"),
    pytest.param(b"hello", id="not JSON"),
    pytest.param(b'{"a": ', id="truncated JSON"),
    pytest.param(b"{'a': 1}", id="single quotes"),
    pytest.param(b'{"a": NaN}', id="NaN"),
    pytest.param(b'{"a": Infinity}', id="Infinity"),
    pytest.param(b'{"a": 1' + b"0" * 5000 + b"}", id="a 5001-digit number"),
    pytest.param(b"[]", id="a list"),
    pytest.param(b'"text"', id="a string"),
    pytest.param(b"42", id="a number"),
    pytest.param(b"null", id="null"),
    pytest.param(b"true", id="true"),
    pytest.param(b"{}", id="an empty object"),
]


@pytest.mark.parametrize("raw", HOSTILE_BODIES)
@pytest.mark.parametrize(
    "method,template,scope", BODY_ENDPOINTS, ids=_ids(BODY_ENDPOINTS)
)
def test_a_hostile_body_is_a_400(world, method, template, scope, raw):
    before = snapshot()

    response = call(world.client(scope), method, template, raw)

    assert_refused(response, 400, before)


def _duplicated(path: str) -> bytes:
    """The valid body with its first key given twice, the second value valid."""
    body = VALID_BODIES[path]
    first = next(iter(body))
    rest = json.dumps(body)[1:]
    return f'{{"{first}": {json.dumps(body[first])}, {rest}'.encode()


@pytest.mark.parametrize(
    "method,template,scope", BODY_ENDPOINTS, ids=_ids(BODY_ENDPOINTS)
)
def test_a_duplicate_json_key_is_a_400_naming_the_key(world, method, template, scope):
    before = snapshot()

    response = call(world.client(scope), method, template, _duplicated(template))

    payload = assert_refused(response, 400, before)
    assert "duplicate key" in payload["reason"]


def test_a_duplicate_key_in_a_nested_object_is_a_400_too(world):
    raw = (
        b'{"event_groups": ["DELIVERED"], "configuration": '
        b'{"url": "http://127.0.0.1:9/a", "url": "http://127.0.0.1:9/b"}}'
    )
    before = snapshot()

    response = call(world.client(SUB), "post", "/api/v1/webhooks", raw)

    assert_refused(response, 400, before)


# Each body endpoint's string fields (dotted paths into its valid body).
STRING_FIELDS = {
    "/api/v1/webhooks": [
        "trackingId",
        "event_groups.0",
        "configuration.url",
        "configuration.content_type",
        "configuration.headers.0.key",
        "configuration.headers.0.value",
        "configuration.oauth2.token_url",
        "configuration.oauth2.client_id",
        "configuration.oauth2.client_secret",
        "configuration.oauth2.audience",
        "configuration.oauth2.scope",
    ],
    "/batch/api/v1/webhooks": [
        "trackingIds.0",
        "event_groups.0",
        "configuration.url",
        "configuration.headers.0.value",
        "configuration.oauth2.client_secret",
    ],
    "/api/v1/events": [
        "id",
        "type",
        "subtype",
        "resource_id",
        "user_id",
        "resource_url",
        "tenant",
        "occurred_at",
        "payload.text",
    ],
}
FULL_CONFIGURATION = {
    "url": URL,
    "content_type": "application/json",
    "headers": [{"key": "x-protection", "value": "v"}],
    "oauth2": {
        "token_url": "http://127.0.0.1:9/token",
        "client_id": "abc",
        "client_secret": "s3cr3t",
        "audience": "https://example.com",
        "scope": "webhooks",
    },
}
HOSTILE_STRINGS = [
    pytest.param("\ud800", id="a lone high surrogate"),
    pytest.param("a\udfffb", id="a lone low surrogate"),
    pytest.param("a\u0000b", id="NUL"),
    pytest.param("x" * 300_000, id="300000 characters"),
]


def _with(path: str, field: str, value: object) -> dict:
    body = json.loads(json.dumps(VALID_BODIES[path]))
    if "configuration" in body:
        body["configuration"] = json.loads(json.dumps(FULL_CONFIGURATION))
    if path == "/api/v1/events":
        body["payload"] = {"text": "ok"}
    *parents, last = field.split(".")
    target = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


FIELD_CASES = [
    (path, field) for path, fields in STRING_FIELDS.items() for field in fields
]


@pytest.mark.parametrize("value", HOSTILE_STRINGS)
@pytest.mark.parametrize(
    "path,field", FIELD_CASES, ids=[f"{p} {f}" for p, f in FIELD_CASES]
)
def test_a_hostile_string_in_any_field_is_refused_cleanly(world, path, field, value):
    scope = PUB if path == "/api/v1/events" else SUB
    # json.dumps escapes: a lone surrogate travels as \ud800, NUL as \u0000.
    raw = json.dumps(_with(path, field, value)).encode()
    before = snapshot()

    response = call(world.client(scope), "post", path, raw)

    # 413 for the long string where the body limit comes first (events).
    expected = (400, 413) if len(value) > 1000 else (400,)
    assert response.status_code in expected, response.content[:300]
    assert_refused(response, response.status_code, before)


WRONG_TYPES = [0, 1.5, True, [], {}, ["x"]]
TYPED_FIELDS = {
    "/batch/api/v1/webhooks": ["trackingIds", "trackingIds.0", "event_groups"],
    "/api/v1/events": ["type", "tenant", "resource_id", "id", "payload"],
}
TYPE_CASES = [
    (path, field, value)
    for path, fields in TYPED_FIELDS.items()
    for field in fields
    for value in WRONG_TYPES
    if not (field == "payload" and value == {})
    and not (field == "trackingIds" and value == ["x"])
]


@pytest.mark.parametrize(
    "path,field,value", TYPE_CASES, ids=[f"{p} {f} {v!r}" for p, f, v in TYPE_CASES]
)
def test_a_wrong_json_type_is_a_400(world, path, field, value):
    scope = PUB if path == "/api/v1/events" else SUB
    before = snapshot()

    response = call(
        world.client(scope), "post", path, json.dumps(_with(path, field, value))
    )

    assert_refused(response, 400, before)


WRONG_MEDIA = [
    pytest.param("text/plain", id="text/plain"),
    pytest.param("application/x-www-form-urlencoded", id="a form"),
    pytest.param("multipart/form-data; boundary=x", id="multipart"),
    pytest.param("application/xml", id="XML"),
    pytest.param("application/json-patch+json", id="a JSON lookalike"),
]


@pytest.mark.parametrize("media", WRONG_MEDIA)
@pytest.mark.parametrize(
    "method,template,scope", BODY_ENDPOINTS, ids=_ids(BODY_ENDPOINTS)
)
def test_a_body_that_is_not_json_media_is_a_415(world, method, template, scope, media):
    before = snapshot()

    response = world.client(scope).post(
        template, json.dumps(VALID_BODIES[template]), content_type=media
    )

    assert_refused(response, 415, before)


@pytest.mark.parametrize(
    "charset",
    [
        pytest.param("bz2_codec", id="a decompressing codec"),
    ],
)
@pytest.mark.parametrize(
    "method,template,scope", BODY_ENDPOINTS, ids=_ids(BODY_ENDPOINTS)
)
def test_a_hostile_charset_is_a_400(world, method, template, scope, charset):
    before = snapshot()

    response = world.client(scope).post(
        template,
        json.dumps(VALID_BODIES[template]),
        content_type=f"application/json; charset={charset}",
    )

    assert_refused(response, 400, before)


# --- query strings ---------------------------------------------------------------

BAD_QUERIES = [
    ("/api/v1/webhooks/", "limit=%00"),
    ("/api/v1/webhooks/", "limit=%ff"),
    ("/api/v1/webhooks/", "limit=1e3"),
    ("/api/v1/webhooks/", "limit=" + "9" * 5000),
    ("/api/v1/webhooks/", "status=%ed%a0%80"),
    ("/api/v1/webhooks/", "status=" + "a" * 10_000),
    ("/{webhook}/deliveries", "limit=%00"),
    ("/{webhook}/deliveries", "limit=-0x10"),
    ("/{webhook}/deliveries", "limit=" + "9" * 5000),
    ("/{webhook}/deliveries", "status=%00"),
    ("/{webhook}/deliveries", "cursor=" + "A" * 10_000),
    ("/{webhook}/deliveries", "cursor=%ff%fe"),
    ("/{webhook}/deliveries", "cursor=%ed%a0%80"),
    ("/{webhook}/deliveries", "cursor=e30"),  # base64 of {}
    ("/{webhook}/deliveries", "cursor=bnVsbA"),  # base64 of null
]


@pytest.mark.parametrize(
    "path,query", BAD_QUERIES, ids=[q[:40] for _, q in BAD_QUERIES]
)
def test_a_hostile_query_string_is_a_400(world, path, query):
    if path.startswith("/{"):
        path = "/api/v1/webhooks" + path.format(**world.mine)
    before = snapshot()

    assert_refused(world.client(SUB).get(f"{path}?{query}"), 400, before)


@pytest.mark.parametrize("query", ["includeWebhook=%00", "includeWebhook=%ff"])
def test_a_hostile_include_webhook_is_a_400_and_deletes_nothing(world, query):
    before = snapshot()

    response = world.client(SUB).delete(
        f"/api/v1/webhooks/{world.mine['webhook']}?{query}"
    )

    assert_refused(response, 400, before)


def test_unknown_query_parameters_on_event_types_are_ignored_not_a_500(world):
    response = world.client(SUB).get("/api/v1/event-types?limit=%00&x=%ff%fe")

    assert response.status_code == 200
    assert {t["name"] for t in response.json()} >= {"DELIVERED"}


# --- what is accepted is stored as sent ------------------------------------------

ODD_TEXT = "\u202e\u200f\U0001f600 \u0627\u0644 e\u0301 \U0001f1eb\U0001f1f7"


def test_rtl_marks_emoji_and_combining_characters_round_trip_through_a_webhook(
    world,
):
    body = {**VALID_BODIES["/api/v1/webhooks"], "trackingId": ODD_TEXT}

    response = call(world.client(SUB), "post", "/api/v1/webhooks", json.dumps(body))

    assert response.status_code == 201, response.content
    read = world.client(SUB).get(f"/api/v1/webhooks/{response.json()['id']}")
    assert read.json()["trackingId"] == ODD_TEXT
    assert Subscription.objects.get(pk=response.json()["id"]).tracking_id == ODD_TEXT


def test_rtl_marks_emoji_and_combining_characters_round_trip_through_an_event(world):
    body = {
        "type": "DELIVERED",
        "tenant": "acme",
        "resource_id": ODD_TEXT,
        "payload": {ODD_TEXT: ODD_TEXT},
    }

    response = call(world.client(PUB), "post", "/api/v1/events", json.dumps(body))

    assert response.status_code == 202, response.content
    event = world.client(PUB).get(f"/api/v1/events/{response.json()['id']}").json()
    assert event["resource_id"] == ODD_TEXT
    assert event["payload"] == {ODD_TEXT: ODD_TEXT}
