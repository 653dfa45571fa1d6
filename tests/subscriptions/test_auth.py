"""Every webhook route: 401 without a valid key, 403 without the scope, 404
for another tenant's id, and another tenant's webhook left untouched."""

import pytest
from rest_framework.test import APIClient

from subscriptions.models import Subscription
from subscriptions.services import revoke_api_key
from tests.support.api import assert_envelope, create, new_body, row_counts

pytestmark = pytest.mark.django_db

ID = "00000000-0000-4000-8000-000000000000"
ROUTES = [
    ("get", "/api/v1/webhooks/"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("post", "/batch/api/v1/webhooks"),
    ("get", f"/api/v1/webhooks/{ID}"),
    ("delete", f"/api/v1/webhooks/{ID}"),
    ("post", f"/api/v1/webhooks/{ID}/resume"),
    ("post", f"/api/v1/webhooks/{ID}/rotate-secret"),
]
ROUTE_IDS = [f"{m} {p}" for m, p in ROUTES]


def _call(api, method, path):
    return getattr(api, method)(path, new_body(), format="json")


@pytest.mark.parametrize("method,path", ROUTES, ids=ROUTE_IDS)
def test_a_request_without_a_key_is_a_401(method, path):
    response = _call(APIClient(), method, path)

    assert_envelope(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    ["Bearer whk_unknown", "Bearer ", "Basic dXNlcjpwYXNz", "whk_no_scheme"],
)
@pytest.mark.parametrize("method,path", ROUTES[:3], ids=ROUTE_IDS[:3])
def test_an_unknown_or_malformed_key_is_a_401(db, method, path, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    assert_envelope(_call(client, method, path), 401)


@pytest.mark.parametrize("method,path", ROUTES, ids=ROUTE_IDS)
def test_a_revoked_key_is_a_401(api, method, path):
    revoke_api_key(api_key=api.client_obj.api_keys.get())

    assert_envelope(_call(api, method, path), 401)


@pytest.mark.parametrize("method,path", ROUTES, ids=ROUTE_IDS)
def test_a_key_without_the_subscriptions_scope_is_a_403(publisher_api, method, path):
    before = row_counts()

    assert_envelope(_call(publisher_api, method, path), 403)

    assert row_counts() == before


def test_a_key_with_both_scopes_may_manage_webhooks(make_api):
    both = make_api("acme", ["subscriptions", "publish"])

    assert create(both, new_body()).status_code == 201


@pytest.fixture
def theirs(other_api) -> Subscription:
    webhook = create(other_api, new_body()).json()
    Subscription.objects.filter(pk=webhook["id"]).update(status="paused")
    return Subscription.objects.get(pk=webhook["id"])


@pytest.mark.parametrize(
    "method,suffix",
    [("get", ""), ("delete", ""), ("post", "/resume"), ("post", "/rotate-secret")],
)
def test_another_tenants_webhook_is_a_404_and_stays_untouched(
    api, theirs, method, suffix
):
    response = getattr(api, method)(f"/api/v1/webhooks/{theirs.pk}{suffix}")

    assert_envelope(response, 404)
    after = Subscription.objects.get(pk=theirs.pk)
    assert (after.status, after.secret) == ("paused", theirs.secret)


def test_another_tenants_webhooks_are_not_listed(api, theirs):
    assert api.get("/api/v1/webhooks/").json() == []
    assert api.get("/api/v1/webhooks/?status=paused").json() == []
