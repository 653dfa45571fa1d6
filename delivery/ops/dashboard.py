"""The operator's dashboard: its figures (a handful of cheap, indexed reads)
and the admin page that shows them."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib import admin
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from delivery.models import Attempt, Breaker, Delivery
from subscriptions.models import Subscription

WINDOW = timedelta(hours=1)
# The dashboard names a few; the admin lists have the rest.
LISTED = 10


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    # Attempts made in the last WINDOW, per outcome (every outcome, zeros too).
    outcomes: dict[str, int]
    due: int
    oldest_due_at: datetime | None
    held: int
    paused_count: int
    paused: list[Subscription]
    open_breakers_count: int
    open_breakers: list[Breaker]
    # Destinations that asked (429/503 Retry-After) for no requests until later.
    backpressured_count: int
    backpressured: list[Breaker]

    @property
    def attempts(self) -> int:
        return sum(self.outcomes.values())

    @property
    def oldest_due_age(self) -> timedelta | None:
        return None if self.oldest_due_at is None else self.now - self.oldest_due_at


def dashboard_figures(*, now: datetime) -> Dashboard:
    """What the service is doing at `now`: attempts per outcome over the last
    hour, the due backlog, held deliveries, paused (or disabled) webhooks, open
    breakers and destinations under backpressure (Retry-After).

    Each figure is one query served by an index (noted at each), so the page
    stays fast with millions of rows.
    """
    # Index attempt_at.
    counted = dict(
        Attempt.objects.filter(at__gt=now - WINDOW, at__lte=now)
        .order_by()
        .values_list("outcome")
        .annotate(n=Count("id"))
    )
    outcomes = {value: counted.get(value, 0) for value in Attempt.Outcome.values}
    # Index delivery_due (partial on status='pending').
    backlog = Delivery.objects.filter(
        status=Delivery.Status.PENDING, next_attempt_at__lte=now
    ).aggregate(due=Count("id"), oldest=Min("next_attempt_at"))
    # Index delivery_sub_unfinished (partial on pending and held).
    held = Delivery.objects.filter(status=Delivery.Status.HELD).count()
    # Index subscription_status_expiry.
    paused = Subscription.objects.filter(status__in=Subscription.HOLDING)
    # One row per destination: a small table, read whole.
    open_breakers = Breaker.objects.filter(open_until__gt=now).order_by("open_until")
    backpressured = Breaker.objects.filter(backpressure_until__gt=now).order_by(
        "-backpressure_until"
    )
    return Dashboard(
        now=now,
        outcomes=outcomes,
        due=backlog["due"],
        oldest_due_at=backlog["oldest"],
        held=held,
        paused_count=paused.count(),
        paused=list(
            paused.select_related("client")
            # Never the secrets: not needed, and not worth decrypting.
            .only("id", "client__name", "url", "paused_reason", "paused_at")
            .order_by("-paused_at")[:LISTED]
        ),
        open_breakers_count=open_breakers.count(),
        open_breakers=list(open_breakers[:LISTED]),
        backpressured_count=backpressured.count(),
        backpressured=list(backpressured[:LISTED]),
    )


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """Staff only: wrapped in admin.site.admin_view in the URLconf."""
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "figures": dashboard_figures(now=timezone.now()),
    }
    return TemplateResponse(request, "delivery/admin_dashboard.html", context)
