"""The operator's dashboard: its figures against known rows, and who may see it."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from delivery.models import Breaker
from delivery.ops.dashboard import dashboard_figures
from tests.support.admin import attempt, delivery, webhook

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin_dashboard")


@pytest.fixture
def busy_hour():
    """Attempts in and before the last hour, a due backlog, held deliveries,
    paused webhooks and breakers open and closed."""
    now = timezone.now()
    sub = webhook("acme")
    for outcome, count in (("ack", 3), ("retry", 2), ("failure", 1)):
        for _ in range(count):
            attempt(delivery(sub, "succeeded"), outcome, at=now - timedelta(minutes=5))
    attempt(delivery(sub, "succeeded"), "ack", at=now - timedelta(minutes=61))
    delivery(sub, "pending", next_attempt_at=now - timedelta(minutes=7))
    delivery(sub, "pending", next_attempt_at=now - timedelta(seconds=1))
    delivery(sub, "pending", next_attempt_at=now + timedelta(hours=1))
    paused = webhook(
        "globex",
        "https://hooks.globex.example/in",
        status="paused",
        paused_reason="10 consecutive failures",
        paused_at=now,
    )
    webhook("initech", status="disabled", paused_at=now - timedelta(hours=1))
    delivery(paused, "held")
    Breaker.objects.create(
        destination="https://down.example:443",
        consecutive_failures=5,
        open_until=now + timedelta(seconds=30),
    )
    Breaker.objects.create(
        destination="https://was-down.example:443",
        consecutive_failures=5,
        open_until=now - timedelta(seconds=1),
    )
    Breaker.objects.create(destination="https://fine.example:443")
    return now


def test_the_figures_count_the_last_hour_the_backlog_and_the_trouble(busy_hour):
    figures = dashboard_figures(now=busy_hour)

    assert figures.outcomes == {
        "ack": 3,
        "conflict_retry": 0,
        "retry": 2,
        "failure": 1,
        "permanent_failure": 0,
        "skipped": 0,
    }
    assert figures.attempts == 6
    assert figures.due == 2
    assert figures.oldest_due_age >= timedelta(minutes=7)
    assert figures.held == 1
    assert figures.paused_count == 2
    assert [s.client.name for s in figures.paused] == ["globex", "initech"]
    assert figures.open_breakers_count == 1
    assert [b.destination for b in figures.open_breakers] == [
        "https://down.example:443"
    ]


def test_an_idle_service_has_zeros_everywhere():
    figures = dashboard_figures(now=timezone.now())

    assert figures.attempts == 0 and set(figures.outcomes.values()) == {0}
    assert (figures.due, figures.oldest_due_at, figures.held) == (0, None, 0)
    assert (figures.paused_count, figures.open_breakers_count) == (0, 0)


def test_the_dashboard_page_shows_the_figures(admin_client, busy_hour):
    response = admin_client.get(DASHBOARD)

    assert response.status_code == 200
    page = response.content.decode()
    assert '<span class="value">6</span><span class="label">attempts' in page
    assert '<span class="value">2</span></a><span class="label">due deliveries' in page
    assert '<span class="value">1</span></a><span class="label">held' in page
    label = '<span class="label">paused or disabled webhooks'
    assert f'<span class="value">2</span></a>{label}' in page
    assert (
        '<span class="value">1</span></a><span class="label">open circuit breakers'
        in page
    )
    assert '<tr class="outcome-retry"><td>' in page
    assert "10 consecutive failures" in page and "hooks.globex.example" in page
    assert "https://down.example:443" in page
    assert "was-down.example" not in page and "fine.example" not in page


def test_the_dashboard_runs_a_fixed_number_of_queries(
    admin_client, busy_hour, django_assert_max_num_queries
):
    for n in range(20):
        webhook(f"tenant-{n}", status="paused", paused_at=busy_hour)

    with django_assert_max_num_queries(12):
        response = admin_client.get(DASHBOARD)

    assert "(the latest 10 of 22)" in response.content.decode()


def test_the_admin_index_links_the_dashboard(admin_client):
    response = admin_client.get(reverse("admin:index"))

    assert response.status_code == 200
    assert f'href="{DASHBOARD}"' in response.content.decode()


def test_the_dashboard_is_for_staff_only(client):
    anonymous = client.get(DASHBOARD)
    User.objects.create_user("customer", password="pw", is_staff=False)
    client.login(username="customer", password="pw")
    not_staff = client.get(DASHBOARD)

    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
    assert not_staff.status_code == 302
    assert not_staff["Location"].startswith(reverse("admin:login"))
