"""The subscriptions list an operator works from: what it shows, how it is
narrowed, and the test-event action (pause and resume are tested in
tests/subscriptions/test_admin.py)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from delivery.models import Delivery
from tests.support.admin import webhook

pytestmark = pytest.mark.django_db

LIST = reverse("admin:subscriptions_subscription_changelist")


def _listed(response) -> set:
    return {sub.pk for sub in response.context["cl"].result_list}


def test_the_list_shows_host_failures_and_last_success(admin_client):
    succeeded_at = timezone.now() - timedelta(minutes=3)
    sub = webhook(
        url="https://hooks.acme.example:8443/in",
        consecutive_failures=4,
        last_success_at=succeeded_at,
    )

    response = admin_client.get(LIST)

    assert response.status_code == 200
    page = response.content.decode()
    assert str(sub.pk) in page
    assert '<td class="field-destination_host">hooks.acme.example:8443</td>' in page
    assert '<td class="field-consecutive_failures">4</td>' in page
    assert "field-last_success_at" in page
    assert response.context["cl"].result_list[0].last_success_at == succeeded_at


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"status__exact": "paused"}, {"paused"}, id="by status"),
        pytest.param({"event_type": "STATUS_CHANGED"}, {"globex"}, id="by event type"),
        pytest.param({"event_type": "DEVIATION"}, set(), id="by unused event type"),
        pytest.param({"client__id__exact": "<globex>"}, {"globex"}, id="by tenant"),
        pytest.param({}, {"active", "paused", "globex"}, id="unfiltered"),
    ],
)
def test_subscriptions_can_be_filtered_by_status_tenant_and_event_type(
    admin_client, params, expected
):
    subs = {
        "active": webhook("acme", groups=("DELIVERED",)),
        "paused": webhook(
            "acme", "https://b.acme.example/in", status="paused", groups=("DELIVERED",)
        ),
        "globex": webhook(
            "globex",
            groups=("STATUS_CHANGED:RELEASED", "STATUS_CHANGED:HELD", "DELIVERED"),
        ),
    }
    if params.get("client__id__exact") == "<globex>":
        params = {"client__id__exact": subs["globex"].client_id}

    response = admin_client.get(LIST, params)

    assert response.status_code == 200
    # Listed once although it has two STATUS_CHANGED filters.
    assert len(response.context["cl"].result_list) == len(expected)
    assert _listed(response) == {subs[name].pk for name in expected}


def test_the_filters_offer_every_catalogued_event_type(admin_client):
    webhook()

    page = admin_client.get(LIST).content.decode()

    for name in ("DELIVERED", "STATUS_CHANGED", "DEVIATION"):
        assert f"?event_type={name}" in page


def test_the_test_event_action_creates_one_test_delivery_per_webhook(admin_client):
    active = webhook("acme", tracking_id="PKG-1")
    paused = webhook("globex", status="paused")
    expired = webhook(
        "initech",
        created_at=timezone.now() - timedelta(days=40),
        expires_at=timezone.now() - timedelta(days=10),
    )

    response = admin_client.post(
        LIST,
        {
            "action": "send_test_event",
            "_selected_action": [active.pk, paused.pk, expired.pk],
        },
        follow=True,
    )

    assert response.status_code == 200
    assert "Sent a test event to 2 subscription(s)." in response.content.decode()
    tests = Delivery.objects.filter(kind=Delivery.Kind.TEST)
    assert {d.subscription_id for d in tests} == {active.pk, paused.pk}
    sent = tests.get(subscription=active)
    assert (sent.status, sent.event.type, sent.event.resource_id) == (
        "pending",
        "TEST",
        "PKG-1",
    )
    assert sent.next_attempt_at <= timezone.now()


def test_the_change_page_of_a_paused_webhook_says_why(admin_client):
    sub = webhook(status="paused", paused_reason="10 consecutive failures")

    response = admin_client.get(
        reverse("admin:subscriptions_subscription_change", args=[sub.pk])
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "10 consecutive failures" in page and "paused" in page
