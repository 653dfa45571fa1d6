"""`GET /metrics`: Prometheus text.

Two kinds of figures:
- counters and a histogram every process increments as it works (attempts
  by outcome, attempt durations, events published, deliveries finished by
  status; webhooks_project/metrics.py), summed over every process of the
  host by prometheus-client's multiprocess mode;
- gauges read from the database at scrape time, because the database sees
  every process's work: the due backlog (the `delivery_due` index, counted up
  to BACKLOG_CAP), in-flight claims (`delivery_due`, between now and now +
  the lease), subscriptions by status (`subscription_status_expiry`),
  circuit breakers and destinations under backpressure (one row per
  destination).

Access: `Authorization: Bearer <WEBHOOK_METRICS_TOKEN>`, or a client address
in WEBHOOK_METRICS_ALLOW_CIDRS (empty by default). With DEBUG off nothing
else is served: "it comes from a private address" is no credential when the
web process sits behind a proxy, on a shared network or in a cluster. Only
with DEBUG=true and no token set may loopback and private clients scrape
(local development).
"""

import hmac
import ipaddress
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from delivery.models import Breaker, Delivery
from delivery.pipeline import counting  # noqa: F401 - creates the series at 0
from delivery.pipeline.claiming import count_due
from subscriptions.models import Subscription
from webhooks_project import errors, metrics

# Counting a due backlog stops here: past it the figure says "at least".
BACKLOG_CAP = 100_000


class DeliveryCollector:
    """Collects the database gauges of the module docstring, one query each."""

    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        due = GaugeMetricFamily(
            "webhook_deliveries_due",
            "Pending deliveries whose next attempt is due now (the backlog), "
            f"counted up to {BACKLOG_CAP}.",
        )
        due.add_metric([], count_due(now=now, cap=BACKLOG_CAP))
        yield due
        # A claim moves next_attempt_at to now + lease: claimed rows whose lease
        # has not run out sit in that range, with a lease token.
        in_flight = Delivery.objects.filter(
            status=Delivery.Status.PENDING,
            next_attempt_at__gt=now,
            next_attempt_at__lte=now + settings.WEBHOOK_CLAIM_LEASE,
            lease_token__isnull=False,
        ).count()
        yield GaugeMetricFamily(
            "webhook_deliveries_in_flight",
            "Deliveries claimed by a worker whose lease has not run out.",
            value=in_flight,
        )
        yield _subscriptions()
        yield from _breakers(now=now)


def _subscriptions() -> GaugeMetricFamily:
    counts = dict.fromkeys(Subscription.Status.values, 0)
    rows = Subscription.objects.order_by().values("status").annotate(n=Count("id"))
    counts.update({row["status"]: row["n"] for row in rows})
    family = GaugeMetricFamily(
        "webhook_subscriptions",
        "Subscriptions by status (paused: by consecutive failures or an operator; "
        "disabled: the receiver answered 410 Gone).",
        labels=["status"],
    )
    for status, count in counts.items():
        family.add_metric([status], count)
    return family


def _breakers(*, now: datetime) -> Iterator[GaugeMetricFamily]:
    counts = Breaker.objects.aggregate(
        open=Count("id", filter=Q(open_until__gt=now)),
        half_open=Count("id", filter=Q(open_until__lte=now)),
        backpressured=Count("id", filter=Q(backpressure_until__gt=now)),
    )
    family = GaugeMetricFamily(
        "webhook_circuit_breakers",
        "Destinations whose circuit breaker is open (attempts postponed) or "
        "half-open (cooldown over, waiting for one probe).",
        labels=["state"],
    )
    for state in ("open", "half_open"):
        family.add_metric([state], counts[state])
    yield family
    yield GaugeMetricFamily(
        "webhook_destinations_backpressured",
        "Destinations that answered 429/503 with Retry-After: their deliveries "
        "are postponed without a request until then.",
        value=counts["backpressured"],
    )


registry = metrics.scrape_registry(DeliveryCollector())


def is_allowed(request: HttpRequest) -> tuple[bool, int]:
    """(allowed, the status to refuse with: 401 when a token would do, else 403)."""
    address = _client_address(request)
    if address is not None and any(
        address.version == network.version and address in network
        for network in settings.WEBHOOK_METRICS_ALLOW_CIDRS
    ):
        return True, 403
    token = settings.WEBHOOK_METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token}"
        return hmac.compare_digest(given.encode(), expected.encode()), 401
    if not settings.DEBUG or address is None:
        return False, 403
    return address.is_loopback or address.is_private, 403


def _client_address(
    request: HttpRequest,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
        return address.ipv4_mapped
    return address


def _refusal_reason() -> str:
    if settings.DEBUG and not settings.WEBHOOK_METRICS_TOKEN:
        return (
            "Metrics are served to loopback and private addresses only "
            "(DEBUG=true); set WEBHOOK_METRICS_TOKEN to scrape from elsewhere."
        )
    return (
        "Metrics need the bearer token WEBHOOK_METRICS_TOKEN, or a client "
        "address in WEBHOOK_METRICS_ALLOW_CIDRS."
    )


@csrf_exempt  # a POST is a 405 in the envelope, not the CSRF check
def metrics_view(request: HttpRequest) -> HttpResponse:
    """The Prometheus scrape endpoint (GET)."""
    if request.method not in ("GET", "HEAD"):
        return errors.method_not_allowed(request, ["GET", "HEAD"])
    allowed, refusal = is_allowed(request)
    if not allowed:
        reason = None
        if refusal == 403:
            reason = _refusal_reason()
        body = errors.envelope(refusal, reason)
        response = JsonResponse(body, status=refusal)
        if refusal == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        errors.log_error(body, request, response=response)
        return response
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
