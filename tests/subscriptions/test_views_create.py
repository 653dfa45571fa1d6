import re
from datetime import datetime, timedelta

import pytest
from django.conf import settings

from delivery.sender.ssrf import BlockedDestination
from delivery.sender.types import OAuth2Config
from subscriptions.models import Subscription, SubscriptionFilter
from subscriptions.services import credentials_digest, fingerprint
from tests.support.api import (
    CLIENT_SECRET,
    HEADER_VALUE,
    assert_envelope,
    create,
    new_body,
    row_counts,
)

pytestmark = pytest.mark.django_db

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_it_creates_a_webhook_and_answers_with_the_webhook_object(api, body):
    response = create(api, body)

    assert response.status_code == 201, response.content
    webhook = response.json()
    assert set(webhook) == {
        "id",
        "authenticator",
        "trackingId",
        "event_groups",
        "configuration",
        "status",
        "created",
        "expiry",
        "secret",
    }
    assert len(webhook["id"]) == 36
    assert webhook["authenticator"] == "acme"
    assert webhook["trackingId"] == "TESTPACKAGEDELIVERED"
    assert webhook["event_groups"] == body["event_groups"]
    assert webhook["configuration"] == {
        "url": "https://example.com/hooks",
        "content_type": "application/json",
        "headers": [{"key": "x-protection-header"}],
        "oauth2": {
            "token_url": "https://idp.example.com/oauth/token",
            "client_id": "abc",
            "audience": "https://example.com",
            "scope": "webhooks",
        },
        "profile": "standard",
        "delivery_ttl": "1d",
        "rate_limit": None,
    }
    assert webhook["status"] == "active"
    assert ISO_Z.match(webhook["created"]) and ISO_Z.match(webhook["expiry"])
    assert (
        _parse(webhook["expiry"]) - _parse(webhook["created"])
        == settings.WEBHOOK_SUBSCRIPTION_TTL
    )
    assert re.match(r"^whsec_[A-Za-z0-9+/=]{32}$", webhook["secret"])


def test_it_stores_the_subscription_with_its_routing_filters(api, body):
    webhook = create(api, body).json()

    sub = Subscription.objects.get(pk=webhook["id"])
    assert sub.client == api.client_obj
    assert sub.secret == webhook["secret"]
    assert sub.headers == [{"key": "x-protection-header", "value": HEADER_VALUE}]
    assert sub.oauth2_client_secret == CLIENT_SECRET
    assert sub.tracking_id == "TESTPACKAGEDELIVERED"
    assert sub.expires_at - sub.created_at == settings.WEBHOOK_SUBSCRIPTION_TTL
    assert sub.fingerprint == fingerprint(
        url="https://example.com/hooks",
        tracking_id="TESTPACKAGEDELIVERED",
        event_groups=["STATUS_CHANGED:RELEASED", "IN_TRANSIT", "DELIVERED"],
        credentials=credentials_digest(
            headers=[{"key": "x-protection-header", "value": HEADER_VALUE}],
            oauth2=OAuth2Config(
                token_url="https://idp.example.com/oauth/token",
                client_id="abc",
                client_secret=CLIENT_SECRET,
                audience="https://example.com",
                scope="webhooks",
            ),
            profile="standard",
        ),
    )
    assert set(sub.filters.values_list("event_type", "subtype")) == {
        ("DELIVERED", ""),
        ("IN_TRANSIT", ""),
        ("STATUS_CHANGED", "RELEASED"),
    }


def test_create_also_answers_on_the_trailing_slash_path(api, body):
    response = create(api, body, "/api/v1/webhooks/")

    assert response.status_code == 201
    assert Subscription.objects.filter(pk=response.json()["id"]).exists()


def test_a_minimal_body_gets_the_defaults(api):
    response = create(
        api,
        {"event_groups": ["DELIVERED"], "configuration": {"url": "http://x.test/h"}},
    )

    assert response.status_code == 201, response.content
    webhook = response.json()
    assert webhook["trackingId"] is None
    assert webhook["configuration"] == {
        "url": "http://x.test/h",
        "content_type": "application/json",
        "headers": [],
        "profile": "standard",
        "delivery_ttl": "1d",
        "rate_limit": None,
    }
    assert Subscription.objects.get(pk=webhook["id"]).tracking_id is None


def test_oauth2_audience_and_scope_are_optional(api, body):
    del body["configuration"]["oauth2"]["audience"]
    del body["configuration"]["oauth2"]["scope"]

    response = create(api, body)

    assert response.status_code == 201, response.content
    assert response.json()["configuration"]["oauth2"] == {
        "token_url": "https://idp.example.com/oauth/token",
        "client_id": "abc",
        "audience": None,
        "scope": None,
    }


def test_duplicate_event_groups_are_stored_once(api, body):
    body["event_groups"] = ["DELIVERED", "IN_TRANSIT", "DELIVERED"]

    webhook = create(api, body).json()

    assert webhook["event_groups"] == ["DELIVERED", "IN_TRANSIT"]
    assert SubscriptionFilter.objects.filter(subscription_id=webhook["id"]).count() == 2


def test_a_type_with_subtypes_can_be_subscribed_to_whole(api, body):
    body["event_groups"] = ["STATUS_CHANGED", "DOCUMENT_GENERATED:SAD"]

    webhook = create(api, body).json()

    assert set(
        SubscriptionFilter.objects.filter(subscription_id=webhook["id"]).values_list(
            "event_type", "subtype"
        )
    ) == {("STATUS_CHANGED", ""), ("DOCUMENT_GENERATED", "SAD")}


def test_authorization_header_is_allowed_without_oauth2(api, body):
    del body["configuration"]["oauth2"]
    body["configuration"]["headers"] = [{"key": "Authorization", "value": "Basic x"}]

    assert create(api, body).status_code == 201


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(
            lambda b: b["configuration"].update(url="https://e.co/" + "a" * 237),
            id="url-250",
        ),
        pytest.param(
            lambda b: b["configuration"].update(content_type="application/" + "a" * 28),
            id="content-type-40",
        ),
        pytest.param(
            lambda b: b["configuration"].update(
                content_type='text/plain; charset="café"; q=1'
            ),
            id="content-type-latin-1-parameter",
        ),
        pytest.param(lambda b: b.update(trackingId="T" * 128), id="tracking-id-128"),
        pytest.param(
            lambda b: b.update(event_groups=["DELIVERED"] * 50), id="50-event-groups"
        ),
        pytest.param(
            lambda b: b["configuration"].update(
                headers=[{"key": "x-a", "value": "v" * (1024 - 3 - 2)}]
            ),
            id="headers-1024",
        ),
        pytest.param(
            lambda b: b["configuration"].update(
                headers=[
                    {"key": "x-a", "value": "v" * 500},
                    {"key": "x-b", "value": "v" * (1024 - 505 - 5)},
                ]
            ),
            id="two-headers-1024",
        ),
        pytest.param(lambda b: b.update(trackingId=None), id="tracking-id-null"),
        pytest.param(lambda b: b["configuration"].update(headers=[]), id="no-headers"),
        pytest.param(
            lambda b: b["configuration"].update(oauth2=None), id="oauth2-null"
        ),
    ],
)
def test_values_at_the_limits_are_accepted(api, body, mutate):
    mutate(body)

    response = create(api, body)

    assert response.status_code == 201, response.content


def _set(path: str, value):
    def mutate(body: dict) -> None:
        *parents, last = path.split(".")
        target = body
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return mutate


def _delete(path: str):
    def mutate(body: dict) -> None:
        *parents, last = path.split(".")
        target = body
        for key in parents:
            target = target[key]
        del target[last]

    return mutate


def _headers(*pairs):
    return _set("configuration.headers", [{"key": k, "value": v} for k, v in pairs])


INVALID = [
    # configuration.url
    ("url-missing", _delete("configuration.url"), "configuration.url"),
    (
        "url-251",
        _set("configuration.url", "https://e.co/" + "a" * 238),
        "configuration.url",
    ),
    ("url-ftp", _set("configuration.url", "ftp://example.com/x"), "configuration.url"),
    (
        "url-no-scheme",
        _set("configuration.url", "example.com/hooks"),
        "configuration.url",
    ),
    ("url-no-host", _set("configuration.url", "https:///hooks"), "configuration.url"),
    (
        "url-bad-port",
        _set("configuration.url", "https://e.co:99999/"),
        "configuration.url",
    ),
    (
        "url-credentials",
        _set("configuration.url", "https://u:p@e.co/"),
        "configuration.url",
    ),
    ("url-space", _set("configuration.url", "https://e.co/a b"), "configuration.url"),
    ("url-number", _set("configuration.url", 42), "configuration.url"),
    ("url-null", _set("configuration.url", None), "configuration.url"),
    ("url-blank", _set("configuration.url", ""), "configuration.url"),
    # configuration.content_type
    (
        "content-type-41",
        _set("configuration.content_type", "a" * 41),
        "configuration.content_type",
    ),
    (
        "content-type-list",
        _set("configuration.content_type", ["a"]),
        "configuration.content_type",
    ),
    (
        "content-type-newline",
        _set("configuration.content_type", "a\nb"),
        "configuration.content_type",
    ),
    (
        # HTTP sends header values as ISO-8859-1: every attempt would fail.
        "content-type-not-latin-1",
        _set("configuration.content_type", "application/json✓"),
        "configuration.content_type",
    ),
    (
        "content-type-not-a-media-type",
        _set("configuration.content_type", "json"),
        "configuration.content_type",
    ),
    (
        "content-type-bad-parameter",
        _set("configuration.content_type", "application/json; charset"),
        "configuration.content_type",
    ),
    # configuration.headers
    (
        "headers-object",
        _set("configuration.headers", {"k": "v"}),
        "configuration.headers",
    ),
    ("headers-string", _set("configuration.headers", "x: y"), "configuration.headers"),
    (
        "header-not-object",
        _set("configuration.headers", ["x"]),
        "configuration.headers.0",
    ),
    (
        "header-no-value",
        _set("configuration.headers", [{"key": "x-a"}]),
        "configuration.headers.0.value",
    ),
    (
        "header-no-key",
        _set("configuration.headers", [{"value": "v"}]),
        "configuration.headers.0.key",
    ),
    ("header-value-number", _headers(("x-a", 5)), "configuration.headers.0.value"),
    ("header-key-number", _headers((5, "v")), "configuration.headers.0.key"),
    ("header-key-space", _headers(("x a", "v")), "configuration.headers.0.key"),
    ("header-key-colon", _headers(("x-a:", "v")), "configuration.headers.0.key"),
    ("header-key-blank", _headers(("", "v")), "configuration.headers.0.key"),
    (
        "header-value-newline",
        _headers(("x-a", "v\r\nX-Evil: 1")),
        "configuration.headers.0.value",
    ),
    (
        # HTTP sends header values as ISO-8859-1: every attempt would fail.
        "header-value-not-latin-1",
        _headers(("x-a", "token-\U0001f600")),
        "configuration.headers.0.value",
    ),
    (
        "header-value-leading-space",
        _headers(("x-a", " v")),
        "configuration.headers.0.value",
    ),
    ("header-host", _headers(("Host", "v")), "configuration.headers.0.key"),
    (
        "header-key-trailing-newline",
        _headers(("x-a\n", "v")),
        "configuration.headers.0.key",
    ),
    (
        "header-content-length",
        _headers(("content-length", "1")),
        "configuration.headers.0.key",
    ),
    (
        "header-content-type",
        _headers(("Content-Type", "text/plain")),
        "configuration.headers.0.key",
    ),
    ("header-webhook-id", _headers(("webhook-id", "v")), "configuration.headers.0.key"),
    (
        "header-webhook-signature",
        _headers(("WEBHOOK-SIGNATURE", "v")),
        "configuration.headers.0.key",
    ),
    (
        "header-webhook-anything",
        _headers(("Webhook-Foo", "v")),
        "configuration.headers.0.key",
    ),
    (
        "header-authorization-with-oauth2",
        _headers(("x-a", "v"), ("authorization", "v")),
        "configuration.headers.1.key",
    ),
    (
        "header-duplicate",
        _headers(("x-a", "1"), ("X-A", "2")),
        "configuration.headers.1.key",
    ),
    (
        "headers-1025",
        _headers(("x-a", "v" * (1024 - 3 - 2 + 1))),
        "configuration.headers",
    ),
    (
        "two-headers-1025",
        _headers(("x-a", "v" * 500), ("x-b", "v" * (1024 - 505 - 5 + 1))),
        "configuration.headers",
    ),
    # configuration.oauth2
    ("oauth2-string", _set("configuration.oauth2", "x"), "configuration.oauth2"),
    (
        "oauth2-no-token-url",
        _delete("configuration.oauth2.token_url"),
        "configuration.oauth2.token_url",
    ),
    (
        "oauth2-token-url-ftp",
        _set("configuration.oauth2.token_url", "ftp://e.co/t"),
        "configuration.oauth2.token_url",
    ),
    (
        "oauth2-token-url-251",
        _set("configuration.oauth2.token_url", "https://e.co/" + "a" * 238),
        "configuration.oauth2.token_url",
    ),
    (
        "oauth2-no-client-id",
        _delete("configuration.oauth2.client_id"),
        "configuration.oauth2.client_id",
    ),
    (
        "oauth2-no-client-secret",
        _delete("configuration.oauth2.client_secret"),
        "configuration.oauth2.client_secret",
    ),
    (
        "oauth2-client-secret-number",
        _set("configuration.oauth2.client_secret", 7),
        "configuration.oauth2.client_secret",
    ),
    (
        "oauth2-scope-number",
        _set("configuration.oauth2.scope", 7),
        "configuration.oauth2.scope",
    ),
    (
        "oauth2-unknown-field",
        _set("configuration.oauth2.grant", "x"),
        "configuration.oauth2.grant",
    ),
    # configuration itself
    ("configuration-missing", _delete("configuration"), "configuration"),
    ("configuration-list", _set("configuration", []), "configuration"),
    (
        "configuration-unknown-field",
        _set("configuration.retries", 3),
        "configuration.retries",
    ),
    # event_groups
    ("event-groups-missing", _delete("event_groups"), "event_groups"),
    ("event-groups-empty", _set("event_groups", []), "event_groups"),
    ("event-groups-51", _set("event_groups", ["DELIVERED"] * 51), "event_groups"),
    ("event-groups-string", _set("event_groups", "DELIVERED"), "event_groups"),
    (
        "event-group-unknown",
        _set("event_groups", ["DELIVERED", "NOPE"]),
        "event_groups.1",
    ),
    ("event-group-lowercase", _set("event_groups", ["delivered"]), "event_groups.0"),
    (
        "event-group-unknown-subtype",
        _set("event_groups", ["STATUS_CHANGED:NOPE"]),
        "event_groups.0",
    ),
    (
        "event-group-subtype-of-plain-type",
        _set("event_groups", ["DELIVERED:X"]),
        "event_groups.0",
    ),
    (
        "event-group-empty-subtype",
        _set("event_groups", ["STATUS_CHANGED:"]),
        "event_groups.0",
    ),
    ("event-group-number", _set("event_groups", [1]), "event_groups.0"),
    (
        "event-group-object",
        _set("event_groups", [{"type": "DELIVERED"}]),
        "event_groups.0",
    ),
    # trackingId
    ("tracking-id-129", _set("trackingId", "T" * 129), "trackingId"),
    ("tracking-id-blank", _set("trackingId", ""), "trackingId"),
    ("tracking-id-number", _set("trackingId", 42), "trackingId"),
    ("tracking-id-list", _set("trackingId", ["A"]), "trackingId"),
    # unknown top-level fields are refused, not ignored
    ("misspelt-tracking-id", _set("trackingID", "X"), "trackingID"),
    ("tracking-ids-on-single-create", _set("trackingIds", ["X"]), "trackingIds"),
]


@pytest.mark.parametrize(
    "mutate,path", [pytest.param(m, p, id=name) for name, m, p in INVALID]
)
def test_invalid_bodies_are_a_400_naming_the_field_and_write_nothing(
    api, body, mutate, path
):
    mutate(body)
    before = row_counts()

    response = create(api, body)

    payload = assert_envelope(response, 400)
    assert path in payload["errors"], payload
    assert payload["reason"].startswith(path), payload
    assert row_counts() == before
    assert HEADER_VALUE.encode() not in response.content
    assert CLIENT_SECRET.encode() not in response.content


def test_limit_messages_read_as_api_md_shows_them(api, body):
    body["configuration"]["url"] = "https://e.co/" + "a" * 238

    payload = assert_envelope(create(api, body), 400)

    assert payload["errors"] == {"configuration.url": ["at most 250 characters"]}
    assert payload["reason"] == "configuration.url: at most 250 characters"


def test_validation_errors_never_echo_a_header_value_or_client_secret(api, body):
    secret_value = "TOPSECRET-" + "z" * 1100
    body["configuration"]["headers"] = [
        {"key": "x-a", "value": secret_value},
        {"key": "x-b", "value": "TOPSECRET2\nx"},
    ]
    body["configuration"]["oauth2"]["client_secret"] = "TOPSECRET3" * 200

    response = create(api, body)

    assert_envelope(response, 400)
    assert b"TOPSECRET" not in response.content


def test_every_error_is_reported_at_once(api, body):
    body["configuration"]["url"] = "ftp://x"
    body["event_groups"] = ["NOPE"]
    body["trackingId"] = ""

    payload = assert_envelope(create(api, body), 400)

    assert {"configuration.url", "event_groups.0", "trackingId"} <= set(
        payload["errors"]
    )


@pytest.mark.parametrize(
    "value", [None, 0, 1.5, True, "x", [], [1], {}, {"a": 1}], ids=repr
)
def test_a_wrong_json_type_anywhere_is_a_400_never_a_500(api, value):
    paths = [
        "",
        "trackingId",
        "event_groups",
        "event_groups.0",
        "configuration",
        "configuration.url",
        "configuration.content_type",
        "configuration.headers",
        "configuration.headers.0",
        "configuration.headers.0.key",
        "configuration.headers.0.value",
        "configuration.oauth2",
        "configuration.oauth2.token_url",
        "configuration.oauth2.client_id",
        "configuration.oauth2.client_secret",
        "configuration.oauth2.audience",
        "configuration.oauth2.scope",
    ]
    for path in paths:
        body = new_body()
        body["trackingId"] = f"T-{path}"
        if path:
            _set(path, value)(body)
        else:
            body = value
        before = row_counts()

        response = create(api, body)

        assert response.status_code in (201, 400), (path, response.content)
        if response.status_code == 400:
            assert_envelope(response, 400)
            assert row_counts() == before


def test_a_body_that_is_not_json_is_a_400(api):
    before = row_counts()

    response = api.post(
        "/api/v1/webhooks", b'{"event_groups": [', content_type="application/json"
    )

    assert_envelope(response, 400)
    assert row_counts() == before


def test_absurdly_nested_json_is_a_400_not_a_500(api):
    response = api.post(
        "/api/v1/webhooks", b"[" * 100_000, content_type="application/json"
    )

    assert_envelope(response, 400)


def test_an_empty_body_is_a_400(api):
    response = api.post("/api/v1/webhooks", b"", content_type="application/json")

    payload = assert_envelope(response, 400)
    assert {"event_groups", "configuration"} <= set(payload["errors"])


def test_a_body_that_is_not_json_media_is_a_415(api):
    before = row_counts()

    response = api.post("/api/v1/webhooks", "url=x", content_type="text/plain")

    assert_envelope(response, 415)
    assert row_counts() == before


def test_a_body_over_the_request_size_limit_is_a_413(api, body, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    body["configuration"]["content_type"] = "x" * 3000
    before = row_counts()

    response = create(api, body)

    assert_envelope(response, 413)
    assert row_counts() == before


@pytest.mark.ssrf_guard
@pytest.mark.parametrize(
    "path,url",
    [
        ("configuration.url", "http://127.0.0.1:9/hooks"),
        ("configuration.url", "http://10.1.2.3/hooks"),
        ("configuration.url", "http://[::1]/hooks"),
        ("configuration.oauth2.token_url", "http://169.254.169.254/token"),
        ("configuration.oauth2.token_url", "http://192.168.0.1/token"),
    ],
)
def test_private_destinations_are_refused_with_the_guards_reason(api, body, path, url):
    body["configuration"]["url"] = "http://93.184.215.14/hooks"
    _set(path, url)(body)
    before = row_counts()

    payload = assert_envelope(create(api, body), 400)

    [message] = payload["errors"][path]
    assert message and "address" in message
    assert row_counts() == before


def test_the_destination_guard_is_asked_about_url_and_token_url(api, body, monkeypatch):
    asked = []

    def guard(url: str) -> None:
        asked.append(url)
        if "idp" in url:
            raise BlockedDestination("idp.example.com resolves to 10.0.0.1, private")

    monkeypatch.setattr("subscriptions.serializers.validate_destination", guard)

    payload = assert_envelope(create(api, body), 400)

    assert asked == [
        "https://example.com/hooks",
        "https://idp.example.com/oauth/token",
    ]
    assert payload["errors"] == {
        "configuration.oauth2.token_url": [
            "idp.example.com resolves to 10.0.0.1, private"
        ]
    }


def test_an_identical_live_webhook_is_a_409_and_nothing_is_written(api, body):
    assert create(api, body).status_code == 201
    before = row_counts()
    body["event_groups"] = list(reversed(body["event_groups"])) + ["DELIVERED"]

    payload = assert_envelope(create(api, body), 409)

    assert "TESTPACKAGEDELIVERED" in payload["reason"]
    assert row_counts() == before


def test_an_identical_paused_webhook_is_a_409_too(api, body):
    webhook = create(api, body).json()
    Subscription.objects.filter(pk=webhook["id"]).update(status="paused")

    assert_envelope(create(api, body), 409)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda b: b.update(trackingId="OTHER"), id="tracking-id"),
        pytest.param(lambda b: b.pop("trackingId"), id="no-tracking-id"),
        pytest.param(lambda b: b.update(event_groups=["DELIVERED"]), id="groups"),
        pytest.param(
            lambda b: b["configuration"].update(url="https://example.com/other"),
            id="url",
        ),
    ],
)
def test_a_webhook_differing_in_url_tracking_id_or_groups_is_not_a_duplicate(
    api, body, change
):
    assert create(api, body).status_code == 201
    change(body)

    assert create(api, body).status_code == 201


def test_headers_and_oauth2_make_a_webhook_different(api, body):
    # Issue 14: credentials are replaced by a second webhook next to the first
    # (tests/subscriptions/test_duplicates.py has the rule in full).
    assert create(api, body).status_code == 201
    del body["configuration"]["oauth2"]
    body["configuration"]["headers"] = []

    assert create(api, body).status_code == 201


def test_another_tenant_may_create_the_same_webhook(api, other_api, body):
    assert create(api, body).status_code == 201

    assert create(other_api, body).status_code == 201


def test_an_expired_webhook_does_not_block_its_successor(api, body):
    old = create(api, body).json()
    # Past its expiry, not yet swept: still "active" in its row.
    Subscription.objects.filter(pk=old["id"]).update(
        expires_at=Subscription.objects.get(pk=old["id"]).created_at
        - timedelta(seconds=1)
    )

    response = create(api, body)

    assert response.status_code == 201, response.content
    assert Subscription.objects.get(pk=old["id"]).status == "expired"


def test_a_create_that_loses_a_race_is_a_409(api, body, monkeypatch):
    """Both requests passed the existence check; the partial unique constraint
    stops the second insert, which must still answer 409."""
    assert create(api, body).status_code == 201
    before = row_counts()
    from subscriptions import selectors

    real = selectors.live_duplicates
    calls = []

    def blind_first_check(**kwargs):
        calls.append(kwargs)
        found = real(**kwargs)
        return found.none() if len(calls) == 1 else found

    monkeypatch.setattr(selectors, "live_duplicates", blind_first_check)

    assert_envelope(create(api, body), 409)
    assert len(calls) == 2
    assert row_counts() == before
