"""Custom headers may not be hop-by-hop, framing or transport credentials
(issue 14): each is a 400 naming the header, in any case."""

import pytest

from subscriptions.models import Subscription
from tests.support.api import assert_envelope, create

pytestmark = pytest.mark.django_db

REFUSED = [
    "Expect",
    "TE",
    "Upgrade",
    "Content-Encoding",
    "Cookie",
    "Proxy-Authorization",
    "Connection",
    "Transfer-Encoding",
    "Host",
    "Content-Length",
    "Keep-Alive",
    "Trailer",
    "Proxy-Connection",
    "Content-Type",
    "X-Webhook-Event",
    "webhook-signature",
]


@pytest.mark.parametrize("name", REFUSED + [n.lower() for n in REFUSED[:10]])
def test_a_reserved_header_is_a_400_naming_it(api, body, name):
    body["configuration"]["headers"] = [
        {"key": "x-fine", "value": "1"},
        {"key": name, "value": "v"},
    ]

    payload = assert_envelope(create(api, body), 400)

    assert payload["errors"] == {
        "configuration.headers.1.key": [f"{name}: reserved header name"]
    }
    assert name in payload["reason"]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(
    "name", ["Authorization", "X-Api-Key", "Cookie-Token", "x-te", "Expected"]
)
def test_ordinary_and_lookalike_names_are_accepted(api, body, name):
    body["configuration"].pop("oauth2")
    body["configuration"]["headers"] = [{"key": name, "value": "v"}]

    response = create(api, body)

    assert response.status_code == 201, response.content
