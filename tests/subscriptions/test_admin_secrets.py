"""No admin page shows a secret: not a signing secret (current or previous),
a header value, an OAuth2 client secret, an API key or its hash, nor the
ciphertext they are stored as."""

import pytest
from django.contrib import admin
from django.db import connection
from django.urls import NoReverseMatch, reverse

from delivery.models import Breaker
from subscriptions.services import create_api_key, set_notification_url
from tests.support.admin import SECRETS, attempt, delivery, webhook

pytestmark = pytest.mark.django_db


@pytest.fixture
def secrets() -> list[str]:
    """Every kind of row, and every secret any of them holds."""
    sub = webhook("acme", tracking_id="PKG-1")
    paused = webhook("acme", "https://b.acme.example/in", status="paused")
    failed = delivery(sub, "failed", last_error="HTTP 500")
    attempt(failed, "failure", status_code=500, response_excerpt="boom")
    delivery(paused, "held")
    Breaker.objects.create(destination="https://hooks.acme.example:443")
    api_key, key = create_api_key(client_name="acme", scopes=["subscriptions"])
    notices = set_notification_url(client=api_key.client, url="https://n.acme.example")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret, headers, oauth2_client_secret, previous_secret "
            "FROM subscriptions_subscription"
        )
        stored = [value for row in cursor.fetchall() for value in row if value]
        cursor.execute("SELECT notification_secret FROM subscriptions_client")
        stored += [value for (value,) in cursor.fetchall() if value]
    return [*SECRETS, key, api_key.key_hash, notices, *stored]


def _pages() -> list[str]:
    """The index, the dashboard, and each model's list, add, change, history
    and delete pages (for its first row)."""
    pages = [reverse("admin:index"), reverse("admin_dashboard")]
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        pages.append(reverse(f"{name}_changelist"))
        pages.append(reverse(f"{name}_add"))
        first = model._default_manager.order_by("pk").first()
        if first is None:
            continue
        for view in ("change", "history", "delete"):
            try:
                pages.append(reverse(f"{name}_{view}", args=[first.pk]))
            except NoReverseMatch:
                continue
    return pages


def test_no_admin_page_shows_a_secret(admin_client, secrets):
    pages = _pages()
    assert len(pages) > 30

    rendered = 0
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code in (200, 403), page
        html = response.content.decode()
        for secret in secrets:
            assert secret not in html, f"{page} shows a secret"
        rendered += response.status_code == 200
    assert rendered > 25


def test_the_subscription_page_names_header_keys_but_no_values(admin_client, secrets):
    sub = webhook("globex")

    html = admin_client.get(
        reverse("admin:subscriptions_subscription_change", args=[sub.pk])
    ).content.decode()

    assert "x-api-token" in html and "acme-hooks" in html
    assert "gAAAA" not in html  # no Fernet token at all
