"""The 409 rule with credentials (issue 14): an exact duplicate, credentials
included, is a 409; webhooks that differ only in header values, OAuth2
settings or profile are not duplicates, so credentials can be replaced
without a gap. The fingerprint holds a digest, never a value."""

import importlib

import pytest
from django.apps import apps

from delivery.sender.types import OAuth2Config
from subscriptions import services
from subscriptions.models import Subscription
from tests.support.api import CLIENT_SECRET, HEADER_VALUE, assert_envelope, create

pytestmark = pytest.mark.django_db

OAUTH2 = OAuth2Config(
    token_url="https://idp.example.com/oauth/token",
    client_id="abc",
    client_secret="s3cr3t",
    audience="https://example.com",
    scope="webhooks",
)


def digest(**overrides) -> str:
    values = {
        "headers": [{"key": "x-key", "value": "one"}],
        "oauth2": OAUTH2,
        "profile": "standard",
    }
    values.update(overrides)
    return services.credentials_digest(**values)


@pytest.mark.parametrize(
    "other",
    [
        {"headers": [{"key": "x-key", "value": "two"}]},
        {"headers": []},
        {"oauth2": None},
        {"oauth2": OAuth2Config(**{**OAUTH2.__dict__, "client_secret": "other"})},
        {"oauth2": OAuth2Config(**{**OAUTH2.__dict__, "client_id": "xyz"})},
        {"profile": "raas"},
    ],
    ids=["header value", "no headers", "no oauth2", "secret", "client", "profile"],
)
def test_the_credentials_digest_differs_by_every_credential(other):
    assert digest(**other) != digest()


def test_the_credentials_digest_ignores_header_order_and_name_case():
    headers = [{"key": "X-Key", "value": "one"}, {"key": "x-b", "value": "2"}]
    reordered = [{"key": "x-b", "value": "2"}, {"key": "x-key", "value": "one"}]

    assert digest(headers=headers) == digest(headers=reordered)


def test_the_fingerprint_is_a_digest_and_holds_no_value():
    fingerprint = services.fingerprint(
        url="https://e.co", tracking_id="T", event_groups=["A"], credentials=digest()
    )

    assert len(fingerprint) == 64
    assert "s3cr3t" not in fingerprint and "one" not in fingerprint
    assert fingerprint != services.fingerprint(
        url="https://e.co", tracking_id="T", event_groups=["A"]
    )


def test_an_exact_duplicate_credentials_included_is_still_a_409(api, body):
    assert create(api, body).status_code == 201

    assert_envelope(create(api, body), 409)


def test_the_same_credentials_in_another_order_or_case_are_a_409(api, body):
    body["configuration"]["headers"] = [
        {"key": "x-a", "value": "1"},
        {"key": "x-b", "value": "2"},
    ]
    assert create(api, body).status_code == 201
    body["configuration"]["headers"] = [
        {"key": "X-B", "value": "2"},
        {"key": "X-A", "value": "1"},
    ]

    assert_envelope(create(api, body), 409)


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["headers"][0].update(value="new-header-value"),
        lambda c: c["oauth2"].update(client_secret="new-client-secret"),
        lambda c: c["oauth2"].update(client_id="new-client"),
        lambda c: c.pop("oauth2"),
        lambda c: c.update(profile="raas"),
    ],
    ids=["header value", "oauth2 secret", "oauth2 client", "no oauth2", "profile"],
)
def test_webhooks_differing_only_in_credentials_or_profile_are_not_duplicates(
    api, body, change
):
    assert create(api, body).status_code == 201
    change(body["configuration"])

    response = create(api, body)

    assert response.status_code == 201, response.content
    assert Subscription.objects.filter(status="active").count() == 2


def test_the_batch_create_compares_credentials_too(api, body):
    body.pop("trackingId")
    body["trackingIds"] = ["A", "B"]
    path = "/batch/api/v1/webhooks"
    assert create(api, body, path=path).status_code == 201

    assert_envelope(create(api, body, path=path), 409)
    body["configuration"]["headers"][0]["value"] = "rotated"
    assert create(api, body, path=path).status_code == 201


def test_no_credential_reaches_the_stored_fingerprint(api, body):
    create(api, body)

    stored = Subscription.objects.values_list("fingerprint", flat=True).get()
    assert HEADER_VALUE not in stored and CLIENT_SECRET not in stored


def test_the_migration_gives_existing_rows_the_services_fingerprint(api, body):
    migration = importlib.import_module(
        "subscriptions.migrations.0004_fingerprint_credentials"
    )
    webhook = create(api, body).json()
    row = Subscription.objects.get(pk=webhook["id"])
    expected = row.fingerprint
    Subscription.objects.filter(pk=row.pk).update(fingerprint="0" * 64)

    migration.add_credentials(apps, None)

    assert Subscription.objects.get(pk=row.pk).fingerprint == expected
