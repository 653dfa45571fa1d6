"""configuration.delivery_ttl through the API (docs/api.md, "Delivery TTL")."""

from datetime import timedelta

import pytest

from subscriptions.models import Subscription
from tests.support.api import assert_envelope, create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def ttls(settings):
    settings.WEBHOOK_DELIVERY_TTL = timedelta(hours=24)
    settings.WEBHOOK_MAX_DELIVERY_TTL = timedelta(days=7)


def test_without_a_ttl_a_webhook_follows_the_deployments(api, body, settings):
    response = create(api, body)

    assert response.status_code == 201, response.content
    assert response.json()["configuration"]["delivery_ttl"] == "1d"
    subscription = Subscription.objects.get()
    assert subscription.delivery_ttl is None
    settings.WEBHOOK_DELIVERY_TTL = timedelta(hours=36)
    shown = api.get(f"/api/v1/webhooks/{subscription.pk}").json()
    assert shown["configuration"]["delivery_ttl"] == "36h"


@pytest.mark.parametrize(
    ("value", "stored", "shown"),
    [
        ("1h", timedelta(hours=1), "1h"),
        ("90m", timedelta(minutes=90), "90m"),
        ("7d", timedelta(days=7), "7d"),
        ("30s", timedelta(seconds=30), "30s"),
    ],
)
def test_a_webhook_keeps_its_own_ttl(api, body, value, stored, shown):
    body["configuration"]["delivery_ttl"] = value

    response = create(api, body)

    assert response.status_code == 201, response.content
    assert response.json()["configuration"]["delivery_ttl"] == shown
    assert Subscription.objects.get().delivery_ttl == stored


def test_a_capillary_webhook_is_retried_for_7_days_by_default(api, body):
    body["configuration"]["profile"] = "capillary"

    response = create(api, body)

    assert response.json()["configuration"]["delivery_ttl"] == "7d"
    assert Subscription.objects.get().delivery_ttl == timedelta(days=7)


def test_capillarys_default_never_exceeds_the_operators_cap(api, body, settings):
    settings.WEBHOOK_MAX_DELIVERY_TTL = timedelta(days=3)
    body["configuration"]["profile"] = "capillary"

    response = create(api, body)

    assert response.json()["configuration"]["delivery_ttl"] == "3d"


def test_a_capillary_webhook_may_ask_for_a_shorter_ttl(api, body):
    body["configuration"].update(profile="capillary", delivery_ttl="2h")

    response = create(api, body)

    assert response.json()["configuration"]["delivery_ttl"] == "2h"


def test_a_ttl_above_the_cap_is_a_400_naming_the_field(api, body, settings):
    settings.WEBHOOK_MAX_DELIVERY_TTL = timedelta(days=2)
    body["configuration"]["delivery_ttl"] = "49h"

    payload = assert_envelope(create(api, body), 400)

    assert payload["errors"] == {
        "configuration.delivery_ttl": ["at most 2d (this deployment's limit)"]
    }
    assert not Subscription.objects.exists()


def test_the_default_cap_is_7_days(api, body):
    body["configuration"]["delivery_ttl"] = "8d"

    payload = assert_envelope(create(api, body), 400)

    assert "configuration.delivery_ttl" in payload["errors"]


@pytest.mark.parametrize(
    "value", ["tomorrow", "", "7", "-1h", "0s", "500ms", None, 3600, ["1h"]], ids=repr
)
def test_a_bad_ttl_is_a_400_naming_the_field(api, body, value):
    body["configuration"]["delivery_ttl"] = value

    payload = assert_envelope(create(api, body), 400)

    assert list(payload["errors"]) == ["configuration.delivery_ttl"], payload
    assert not Subscription.objects.exists()


def test_the_schema_shows_the_delivery_ttl(schema):
    schemas = schema["components"]["schemas"]
    assert "delivery_ttl" in schemas["ConfigurationRequest"]["properties"]
    assert "delivery_ttl" in schemas["ConfigurationOut"]["properties"]
