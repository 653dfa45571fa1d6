from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from delivery.models import Attempt, Breaker, Delivery
from tests.support.rows import make_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = User.objects.create_superuser("ops", "ops@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def delivery(subscribe):
    subscription = subscribe(
        "http://a.example/hooks",
        headers=[{"key": "x-protection-header", "value": "very-secret-value"}],
    )
    delivery = make_delivery(subscription, status="failed")
    Attempt.objects.create(
        delivery=delivery, number=1, at=timezone.now(), outcome="permanent_failure"
    )
    return delivery


@pytest.mark.parametrize(
    "path",
    [
        "/admin/delivery/delivery/",
        "/admin/delivery/delivery/?status__exact=failed&kind__exact=event",
        "/admin/delivery/attempt/",
        "/admin/delivery/breaker/",
    ],
)
def test_the_lists_render_without_secrets(admin_client, delivery, path):
    Breaker.objects.create(destination="http://a.example:80", consecutive_failures=2)
    response = admin_client.get(path)
    assert response.status_code == 200
    page = response.content.decode()
    assert "very-secret-value" not in page
    assert "whsec_" not in page


def test_a_delivery_page_shows_its_attempts(admin_client, delivery):
    response = admin_client.get(f"/admin/delivery/delivery/{delivery.pk}/change/")
    assert response.status_code == 200
    assert "permanent_failure" in response.content.decode()


def test_the_retry_action_sends_deliveries_again(admin_client, delivery):
    response = admin_client.post(
        "/admin/delivery/delivery/",
        {"action": "retry_deliveries", "_selected_action": [str(delivery.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    assert Delivery.objects.get(pk=delivery.pk).status == "pending"


def test_the_close_action_closes_breakers(admin_client):
    row = Breaker.objects.create(
        destination="http://a.example:80",
        consecutive_failures=7,
        open_until=timezone.now() + timedelta(minutes=1),
    )
    admin_client.post(
        "/admin/delivery/breaker/",
        {"action": "close_breakers", "_selected_action": [str(row.pk)]},
    )
    row.refresh_from_db()
    assert (row.consecutive_failures, row.open_until) == (0, None)
