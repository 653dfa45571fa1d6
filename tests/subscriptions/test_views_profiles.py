"""configuration.profile through the API (docs/api.md, "Profiles")."""

import pytest

from subscriptions.models import Subscription
from tests.support.api import assert_envelope, create

pytestmark = pytest.mark.django_db


def test_a_webhook_without_a_profile_is_standard(api, body):
    response = create(api, body)

    assert response.status_code == 201, response.content
    assert response.json()["configuration"]["profile"] == "standard"
    assert Subscription.objects.get().profile == "standard"


@pytest.mark.parametrize("profile", ["standard", "raas", "capillary"])
def test_the_webhook_object_returns_its_profile(api, body, profile):
    body["configuration"]["profile"] = profile

    created = create(api, body)
    assert created.status_code == 201, created.content
    webhook_id = created.json()["id"]

    assert created.json()["configuration"]["profile"] == profile
    shown = api.get(f"/api/v1/webhooks/{webhook_id}").json()
    assert shown["configuration"]["profile"] == profile
    listed = api.get("/api/v1/webhooks/").json()
    assert [w["configuration"]["profile"] for w in listed] == [profile]


@pytest.mark.parametrize("value", ["RAAS", "svix", "", None, 1, ["raas"]], ids=repr)
def test_an_unknown_profile_is_a_400_naming_the_field(api, body, value):
    body["configuration"]["profile"] = value

    payload = assert_envelope(create(api, body), 400)

    assert "configuration.profile" in payload["errors"], payload
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("name", ["x-raas-webhook-signature", "X-Raas-Event"])
def test_a_raas_webhook_cannot_set_the_raas_headers(api, body, name):
    body["configuration"]["profile"] = "raas"
    body["configuration"]["headers"] = [{"key": name, "value": "forged"}]

    payload = assert_envelope(create(api, body), 400)

    assert payload["errors"] == {
        "configuration.headers.0.key": ["reserved header name of this profile"]
    }


def test_the_batch_create_takes_a_profile_too(api, body):
    body.pop("trackingId")
    body["trackingIds"] = ["A", "B"]
    body["configuration"]["profile"] = "capillary"

    response = create(api, body, path="/batch/api/v1/webhooks")

    assert response.status_code == 201, response.content
    assert {w["configuration"]["profile"] for w in response.json()} == {"capillary"}


def test_the_schema_shows_the_profile(schema):
    schemas = schema["components"]["schemas"]
    request = schemas["ConfigurationRequest"]["properties"]
    shown = schemas["ConfigurationOut"]["properties"]
    assert "profile" in request
    assert "profile" in shown
