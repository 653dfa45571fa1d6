import re

import pytest
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.urls import reverse
from rest_framework.test import APIClient

from delivery.models import Delivery
from subscriptions.models import ApiKey, Client, Subscription
from subscriptions.services import create_api_key
from tests.support.api import CLIENT_SECRET, HEADER_VALUE, create, make_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def webhook(api) -> Subscription:
    from tests.support.api import new_body

    created = create(api, new_body()).json()
    return Subscription.objects.get(pk=created["id"])


def _secrets_of(sub: Subscription) -> list[str]:
    return [HEADER_VALUE, CLIENT_SECRET, sub.secret]


def test_the_subscription_list_shows_no_secrets(admin_client, webhook):
    response = admin_client.get(reverse("admin:subscriptions_subscription_changelist"))

    assert response.status_code == 200
    assert webhook.url.encode() in response.content
    for secret in _secrets_of(webhook):
        assert secret.encode() not in response.content


def test_the_subscription_page_shows_header_names_but_no_secrets(admin_client, api):
    from tests.support.api import new_body

    rotated = create(api, new_body()).json()
    api.post(f"/api/v1/webhooks/{rotated['id']}/rotate-secret")
    sub = Subscription.objects.get(pk=rotated["id"])
    assert sub.previous_secret

    response = admin_client.get(
        reverse("admin:subscriptions_subscription_change", args=[sub.pk])
    )

    assert response.status_code == 200
    assert b"x-protection-header" in response.content
    for secret in [*_secrets_of(sub), sub.previous_secret]:
        assert secret.encode() not in response.content
    # Nothing on the page is an input: the configuration is immutable.
    for field in ("url", "secret", "headers", "oauth2_client_secret", "tracking_id"):
        assert f'name="{field}"'.encode() not in response.content


def test_subscriptions_cannot_be_added_in_the_admin(admin_client):
    response = admin_client.get(reverse("admin:subscriptions_subscription_add"))

    assert response.status_code == 403


@pytest.mark.parametrize("term", ["tracking_id", "url", "id"])
def test_subscriptions_can_be_searched_by_id_url_and_tracking_id(
    admin_client, webhook, api, term
):
    from tests.support.api import new_body

    other = new_body()
    other["trackingId"] = "SOMETHINGELSE"
    other["configuration"]["url"] = "https://other.example.net/x"
    other_id = create(api, other).json()["id"]
    query = {
        "tracking_id": webhook.tracking_id,
        "url": "example.com/hooks",
        "id": str(webhook.pk)[:13],
    }[term]

    response = admin_client.get(
        reverse("admin:subscriptions_subscription_changelist"), {"q": query}
    )

    assert response.status_code == 200
    assert str(webhook.pk).encode() in response.content
    assert other_id.encode() not in response.content


def test_the_pause_and_resume_actions_hold_and_release_deliveries(
    admin_client, webhook
):
    pending = make_delivery(webhook, "pending")
    url = reverse("admin:subscriptions_subscription_changelist")

    admin_client.post(url, {"action": "pause", "_selected_action": [webhook.pk]})

    webhook.refresh_from_db()
    pending.refresh_from_db()
    assert webhook.status == "paused" and "admin" in webhook.paused_reason
    assert pending.status == Delivery.Status.HELD

    admin_client.post(url, {"action": "resume", "_selected_action": [webhook.pk]})

    webhook.refresh_from_db()
    pending.refresh_from_db()
    assert webhook.status == "active"
    assert pending.status == Delivery.Status.PENDING


def test_deleting_in_the_admin_cancels_pending_deliveries(admin_client, webhook):
    pending = make_delivery(webhook, "pending")

    response = admin_client.post(
        reverse("admin:subscriptions_subscription_delete", args=[webhook.pk]),
        {"post": "yes"},
    )

    assert response.status_code == 302
    assert not Subscription.objects.filter(pk=webhook.pk).exists()
    pending.refresh_from_db()
    assert pending.status == Delivery.Status.CANCELLED


def test_an_api_key_created_in_the_admin_is_shown_once_and_works(admin_client):
    client = Client.objects.create(name="acme")

    response = admin_client.post(
        reverse("admin:subscriptions_apikey_add"),
        {"client": client.pk, "name": "ci", "scopes": ["subscriptions"]},
    )

    # Shown in the answer to the POST itself, not after a redirect.
    assert response.status_code == 200
    [key] = re.findall(rb"whk_[A-Za-z0-9_\-]{20,}", response.content)
    assert b"copy it now" in response.content.lower()
    assert "no-store" in response["Cache-Control"]
    api_key = ApiKey.objects.get()
    assert (api_key.client, api_key.name, api_key.scopes) == (
        client,
        "ci",
        ["subscriptions"],
    )
    assert api_key.key_hash.encode() not in response.content
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key.decode()}")
    assert api.get("/api/v1/webhooks/").status_code == 200
    # Shown once: no later page has it.
    for page in (
        reverse("admin:subscriptions_apikey_changelist"),
        reverse("admin:subscriptions_apikey_change", args=[api_key.pk]),
        reverse("admin:index"),
    ):
        assert key not in admin_client.get(page).content


def _cookie_texts(response) -> list[str]:
    """Each cookie the response sets, as sent and, for Django's flash
    messages (signed and maybe compressed, not encrypted), as decoded."""
    texts = []
    for name, morsel in response.cookies.items():
        texts.append(morsel.OutputString())
        if name == CookieStorage.cookie_name and morsel.value:
            decoded = CookieStorage(HttpRequest())._decode(morsel.value) or []
            texts.extend(str(message) for message in decoded)
    return texts


def test_a_new_api_key_never_travels_in_a_cookie_or_the_session(admin_client):
    """Django's flash messages live in a signed but readable cookie (or the
    session table): the key must be in neither."""
    client = Client.objects.create(name="acme")

    response = admin_client.post(
        reverse("admin:subscriptions_apikey_add"),
        {"client": client.pk, "name": "ci", "scopes": ["subscriptions"]},
    )
    after = admin_client.get(reverse("admin:subscriptions_apikey_changelist"))

    # The stored prefix is the key's first 12 characters, 8 of them random.
    prefix = ApiKey.objects.get().prefix
    for cookie in _cookie_texts(response) + _cookie_texts(after):
        assert prefix not in cookie
    for session in Session.objects.all():
        assert prefix not in session.session_data
        assert prefix not in str(session.get_decoded())
    assert prefix.encode() in response.content


def test_an_api_key_needs_a_scope(admin_client):
    client = Client.objects.create(name="acme")

    response = admin_client.post(
        reverse("admin:subscriptions_apikey_add"),
        {"client": client.pk, "name": "ci"},
    )

    assert response.status_code == 200  # the form again, with its error
    assert not ApiKey.objects.exists()


def test_api_key_pages_never_show_the_hash(admin_client):
    api_key, _ = create_api_key(client_name="acme", scopes=["publish"])

    pages = [
        reverse("admin:subscriptions_apikey_changelist"),
        reverse("admin:subscriptions_apikey_change", args=[api_key.pk]),
        reverse("admin:subscriptions_client_change", args=[api_key.client_id]),
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200
        assert api_key.prefix.encode() in response.content
        assert api_key.key_hash.encode() not in response.content


def test_the_revoke_action_stops_the_key(admin_client, api):
    api_key = api.client_obj.api_keys.get()
    assert api.get("/api/v1/webhooks/").status_code == 200

    admin_client.post(
        reverse("admin:subscriptions_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )

    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert api.get("/api/v1/webhooks/").status_code == 401


def test_only_the_name_of_an_existing_key_can_be_edited(admin_client):
    api_key, _ = create_api_key(client_name="acme", scopes=["publish"])

    admin_client.post(
        reverse("admin:subscriptions_apikey_change", args=[api_key.pk]),
        {"name": "renamed", "scopes": '["subscriptions"]'},
    )

    api_key.refresh_from_db()
    assert (api_key.name, api_key.scopes) == ("renamed", ["publish"])


def test_an_api_key_is_bound_to_tenants_in_the_admin(admin_client):
    carrier = Client.objects.create(name="carrier")
    acme = Client.objects.create(name="acme")
    globex = Client.objects.create(name="globex")

    response = admin_client.post(
        reverse("admin:subscriptions_apikey_add"),
        {"client": carrier.pk, "scopes": ["publish"], "tenants": [acme.pk]},
    )
    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    assert list(api_key.tenants.all()) == [acme]

    changed = admin_client.post(
        reverse("admin:subscriptions_apikey_change", args=[api_key.pk]),
        {"name": "", "tenants": [acme.pk, globex.pk]},
    )
    assert changed.status_code == 302
    assert set(api_key.tenants.all()) == {acme, globex}


def test_only_a_publish_key_is_bound_to_tenants_in_the_admin(admin_client):
    carrier = Client.objects.create(name="carrier")
    acme = Client.objects.create(name="acme")

    response = admin_client.post(
        reverse("admin:subscriptions_apikey_add"),
        {"client": carrier.pk, "scopes": ["subscriptions"], "tenants": [acme.pk]},
    )

    assert response.status_code == 200
    assert b"publish scope" in response.content
    assert not ApiKey.objects.exists()
