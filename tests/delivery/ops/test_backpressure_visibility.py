"""Operators see destination-wide backpressure (dashboard, /metrics) and can
clear it with the breaker's close action."""

from datetime import timedelta

from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from delivery import services
from delivery.models import Breaker
from delivery.ops.dashboard import dashboard_figures


def _backpressure_rows() -> None:
    now = timezone.now()
    Breaker.objects.create(
        destination="https://a.example:443", backpressure_until=now + timedelta(1)
    )
    Breaker.objects.create(
        destination="https://b.example:443", backpressure_until=now - timedelta(1)
    )
    Breaker.objects.create(destination="https://c.example:443")


def test_the_dashboard_lists_destinations_asking_to_wait(db, admin_client):
    _backpressure_rows()

    figures = dashboard_figures(now=timezone.now())
    page = admin_client.get(reverse("admin_dashboard")).content.decode()

    assert figures.backpressured_count == 1
    assert [b.destination for b in figures.backpressured] == ["https://a.example:443"]
    assert "destinations asking to wait (Retry-After)" in page
    assert "https://a.example:443" in page


def test_metrics_count_destinations_under_backpressure(db, settings):
    settings.WEBHOOK_METRICS_TOKEN = "metrics-token-123"
    _backpressure_rows()

    response = HttpClient().get(
        "/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-123"
    )

    values = {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    assert values["webhook_destinations_backpressured"] == 1


def test_closing_a_breaker_forgets_its_backpressure(db):
    _backpressure_rows()
    services.close_breakers(destinations=["https://a.example:443"])
    assert (
        Breaker.objects.get(destination="https://a.example:443").backpressure_until
        is None
    )
