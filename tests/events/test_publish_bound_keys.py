"""A publish key bound to tenants (issue 19): it publishes only their tenant
events; anything else is a 403 in the envelope and writes nothing."""

import json

import pytest
from rest_framework.test import APIClient

from delivery.models import Delivery
from events.models import Event
from subscriptions.models import ApiKey, Client
from subscriptions.services import create_api_key
from tests.support.api import assert_envelope
from tests.support.rows import earlier


def _key(*, tenants=(), client_name="carrier") -> APIClient:
    _, key = create_api_key(
        client_name=client_name, scopes=["publish"], tenants=tenants
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api


def _publish(api, url="/api/v1/events", **body):
    return api.post(url, json.dumps(body), content_type="application/json")


@pytest.fixture
def tenants(subscribe):
    subscribe("acme", created_at=earlier())
    subscribe("globex", created_at=earlier())


def _event(tenant=None, **fields):
    return {"type": "DELIVERED", "payload": {}, **fields} | (
        {"tenant": tenant} if tenant else {}
    )


def test_a_bound_key_publishes_into_its_tenant(tenants):
    response = _publish(_key(tenants=["acme"]), **_event("acme"))

    assert response.status_code == 202, response.json()
    assert response.json()["deliveries"] == 1


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        pytest.param(
            _event("globex"), "may not publish into tenant 'globex'", id="other tenant"
        ),
        pytest.param(_event(resource_id="PKG1"), "bound to tenants", id="public event"),
    ],
)
def test_a_bound_key_publishing_elsewhere_is_a_403_and_writes_nothing(
    tenants, event, reason
):
    response = _publish(_key(tenants=["acme"]), **event)

    assert_envelope(response, 403)
    assert response.json()["reason"].startswith("tenant: ")
    assert reason in response.json()["reason"]
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()


def test_a_batch_with_one_event_for_another_tenant_is_a_403_writing_nothing(tenants):
    response = _publish(
        _key(tenants=["acme"]),
        url="/batch/api/v1/events",
        events=[_event("acme"), _event("globex")],
    )

    assert_envelope(response, 403)
    assert response.json()["reason"].startswith("events.1.tenant: ")
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()


def test_an_unbound_key_publishes_into_any_tenant(tenants):
    unbound = _key()

    for tenant in ("acme", "globex"):
        assert _publish(unbound, **_event(tenant)).status_code == 202
    assert _publish(unbound, **_event(resource_id="PKG1")).status_code == 202


def test_a_repeat_of_another_tenants_event_is_refused_too(tenants):
    unbound, bound = _key(), _key(tenants=["acme"])
    assert _publish(unbound, **_event("globex", id="order-1")).status_code == 202

    response = _publish(bound, **_event("globex", id="order-1"))

    assert_envelope(response, 403)
    assert Event.objects.count() == 1


def test_binding_another_tenant_takes_effect_on_the_next_request(tenants):
    bound = _key(tenants=["acme"])
    assert _publish(bound, **_event("globex")).status_code == 403  # now cached

    ApiKey.objects.get().tenants.add(Client.objects.get(name="globex"))

    assert _publish(bound, **_event("globex")).status_code == 202
