"""An event's page shows its deliveries, a bounded number of them."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from delivery.admin import EVENT_PAGE_DELIVERIES
from delivery.models import Delivery
from tests.support.admin import delivery, event, webhook

pytestmark = pytest.mark.django_db


def _fan_out(count: int):
    """One event delivered to `count` webhooks of one client."""
    first = webhook("acme", "https://hooks.acme.example/0")
    happened = event(first.client, resource_id="PKG-42")
    subs = [first] + [
        webhook(first.client, f"https://hooks.acme.example/{n}")
        for n in range(1, count)
    ]
    now = timezone.now()
    Delivery.objects.bulk_create(
        Delivery(
            event=happened,
            subscription=sub,
            client=sub.client,
            status="succeeded",
            attempts_count=1,
            last_status_code=200,
            delivered_at=now,
            expires_at=now,
        )
        for sub in subs
    )
    return happened


def test_an_event_page_shows_its_deliveries_read_only(admin_client):
    sub = webhook()
    row = delivery(sub, "failed", last_status_code=500)

    response = admin_client.get(
        reverse("admin:events_event_change", args=[row.event_id])
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert reverse("admin:delivery_delivery_change", args=[row.pk]) in page
    assert "failed" in page and "500" in page
    assert "all 1 deliveries of this event" in page
    assert 'name="deliveries-0-status"' not in page


def test_an_event_with_many_deliveries_shows_the_first_ones_and_links_the_rest(
    admin_client, django_assert_max_num_queries
):
    happened = _fan_out(EVENT_PAGE_DELIVERIES + 20)
    url = reverse("admin:events_event_change", args=[happened.pk])

    # A bounded number of queries: not one per delivery shown.
    with django_assert_max_num_queries(20):
        response = admin_client.get(url)

    assert response.status_code == 200
    page = response.content.decode()
    shown = re.findall(r'href="/admin/delivery/delivery/([0-9a-f-]{36})/change/"', page)
    assert len(set(shown)) == EVENT_PAGE_DELIVERIES
    link = f"/admin/delivery/delivery/?event__id__exact={happened.pk}"
    assert f'href="{link}"' in page
    assert f"all {EVENT_PAGE_DELIVERIES + 20} deliveries of this event" in page

    listed = admin_client.get(link)

    assert listed.status_code == 200
    assert {d.event_id for d in listed.context["cl"].result_list} == {happened.pk}
    assert listed.context["cl"].result_count == EVENT_PAGE_DELIVERIES + 20
