"""configuration.rate_limit through the API (docs/api.md, "Rate limits")."""

import pytest

from subscriptions.models import Subscription
from tests.support.api import assert_envelope, create

pytestmark = pytest.mark.django_db


def test_without_a_rate_limit_the_webhook_shows_null(api, body):
    response = create(api, body)

    assert response.status_code == 201, response.content
    assert response.json()["configuration"]["rate_limit"] is None
    assert Subscription.objects.get().rate_limit == ""


@pytest.mark.parametrize(
    ("value", "shown"),
    [("10/s", "10/s"), ("600/m", "600/m"), (" 5 / s ", "5/s"), ("1/m", "1/m")],
)
def test_a_webhook_keeps_its_rate_limit(api, body, value, shown):
    body["configuration"]["rate_limit"] = value

    response = create(api, body)

    assert response.status_code == 201, response.content
    assert response.json()["configuration"]["rate_limit"] == shown
    subscription = Subscription.objects.get()
    assert subscription.rate_limit == shown
    again = api.get(f"/api/v1/webhooks/{subscription.pk}").json()
    assert again["configuration"]["rate_limit"] == shown


@pytest.mark.parametrize(
    "value",
    ["fast", "", "10", "10/h", "0/s", "-1/s", "1001/s", "60001/m", "1.5/s", None, 10],
    ids=repr,
)
def test_a_bad_rate_limit_is_a_400_naming_the_field(api, body, value):
    body["configuration"]["rate_limit"] = value

    payload = assert_envelope(create(api, body), 400)

    assert list(payload["errors"]) == ["configuration.rate_limit"]
    assert not Subscription.objects.exists()
