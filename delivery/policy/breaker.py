"""The circuit breaker per destination (scheme://host:port).

WEBHOOK_BREAKER_THRESHOLD consecutive failures of the destination itself
(a 5xx, or refused, reset, timed out, TLS: classification.destination_health)
across all deliveries to it open it for WEBHOOK_BREAKER_COOLDOWN: attempts
due meanwhile are postponed to the reopen time without a request (recorded as
`skipped`). Once the cooldown is over the breaker is half-open: one probe,
claimed by a conditional UPDATE so only one worker sends it, decides — an
answer below 500 closes it, a failure opens it again. Our own failures
(encoding, SSRF block, DNS, building the request) say nothing about the
destination and leave it as it is. The breaker is shared by every tenant, so
what one tenant's webhook provokes (a path answering 404, a content type that
cannot be sent) must not postpone the others' deliveries (docs/security.md,
"The circuit breaker and tenants"). Recording hands `Tally.of` ACK for "the
host answered" and FAILURE for "the host failed".

State is read once per batch (`load_states`) and written once per
destination per flush (`record_outcomes`), with arithmetic done in SQL so
concurrent workers do not lose each other's counts.

The same row carries the destination's backpressure: a 429 or 503 with a
`Retry-After` (classification.asked_wait) sets `backpressure_until`, at most
WEBHOOK_BACKPRESSURE_MAX ahead (`record_backpressure`), and every delivery
due to the destination meanwhile is postponed to it without a request, an
attempt or a failure. Kept here rather than in Redis: it is read by the same
per-batch query as the breaker (no extra round trip on the send path), all
workers see it, and it survives a Redis restart.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection

from delivery.models import Attempt, Breaker

_DEFAULT_PORTS = {"http": 80, "https": 443}


def destination_of(url: str) -> str:
    """`https://Example.com/hooks?a=1` -> `https://example.com:443`."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        port = 0
    return f"{scheme}://{host}:{port}"


@dataclass(frozen=True)
class BreakerState:
    consecutive_failures: int = 0
    open_until: datetime | None = None
    backpressure_until: datetime | None = None

    def waits(self, now: datetime) -> bool:
        """The destination asked for no requests until backpressure_until."""
        return self.backpressure_until is not None and self.backpressure_until > now

    def is_open(self, now: datetime) -> bool:
        """Requests to the destination are postponed until open_until."""
        return self.open_until is not None and self.open_until > now

    def wants_probe(self, now: datetime) -> bool:
        """Half-open: the cooldown is over and one request may test the water."""
        return self.open_until is not None and self.open_until <= now

    @property
    def is_healthy(self) -> bool:
        return self.consecutive_failures == 0 and self.open_until is None


CLOSED = BreakerState()


@dataclass(frozen=True)
class Tally:
    """What one flush saw for one destination, in completion order."""

    acked: bool
    # Failures after the last ack (all of them when there was no ack).
    failures: int

    @classmethod
    def of(cls, outcomes: Iterable[str]) -> "Tally":
        acked, failures = False, 0
        for outcome in outcomes:
            if outcome == Attempt.Outcome.ACK:
                acked, failures = True, 0
            elif outcome == Attempt.Outcome.FAILURE:
                failures += 1
        return cls(acked, failures)

    @property
    def is_news(self) -> bool:
        return self.acked or self.failures > 0


def apply(
    state: BreakerState,
    tally: Tally,
    *,
    now: datetime,
    threshold: int | None = None,
    cooldown: timedelta | None = None,
) -> BreakerState:
    """The transition. record_outcomes() performs the same one in SQL."""
    threshold = threshold or settings.WEBHOOK_BREAKER_THRESHOLD
    cooldown = cooldown if cooldown is not None else settings.WEBHOOK_BREAKER_COOLDOWN
    if tally.acked:
        failures, open_until = tally.failures, None
    else:
        failures = state.consecutive_failures + tally.failures
        open_until = state.open_until
    if tally.failures and failures >= threshold:
        open_until = now + cooldown
    return BreakerState(failures, open_until, state.backpressure_until)


def load_states(destinations: Iterable[str]) -> dict[str, BreakerState]:
    """The current state of each destination (CLOSED when it has no row)."""
    wanted = set(destinations)
    states = dict.fromkeys(wanted, CLOSED)
    if not wanted:
        return states
    if connection.vendor == "postgresql":
        # Plain SQL: this runs for every batch, and compiling the queryset
        # cost the worker more CPU than the query.
        with connection.cursor() as cursor:
            cursor.execute(_LOAD_STATES, [sorted(wanted)])
            rows = cursor.fetchall()
    else:
        rows = Breaker.objects.filter(destination__in=wanted).values_list(*_STATE)
    for destination, failures, open_until, backpressure_until in rows:
        states[destination] = BreakerState(failures, open_until, backpressure_until)
    return states


_STATE = ("destination", "consecutive_failures", "open_until", "backpressure_until")
_LOAD_STATES = (
    f"SELECT {', '.join(_STATE)} FROM {Breaker._meta.db_table} "
    "WHERE destination = ANY(%s)"
)


def record_backpressure(waits: dict[str, datetime], *, now: datetime) -> None:
    """Postpone each destination's deliveries until its time (one upsert each);
    a later time already recorded (another worker's answer) is kept."""
    table = connection.ops.quote_name(Breaker._meta.db_table)
    sql = (
        f"INSERT INTO {table} (destination, consecutive_failures, open_until, "
        "backpressure_until, updated_at) VALUES (%s, 0, NULL, %s, %s) "
        "ON CONFLICT (destination) DO UPDATE SET backpressure_until = CASE "
        f"WHEN {table}.backpressure_until > EXCLUDED.backpressure_until "
        f"THEN {table}.backpressure_until ELSE EXCLUDED.backpressure_until END, "
        "updated_at = EXCLUDED.updated_at"
    )
    with connection.cursor() as cursor:
        for destination in sorted(waits):
            cursor.execute(sql, [destination, _dt(waits[destination]), _dt(now)])


def claim_probe(destination: str, *, now: datetime) -> datetime | None:
    """Try to become the one probe of a half-open breaker.

    Re-arms the cooldown in the same conditional UPDATE, so other workers see
    it open again and skip. Returns the new open_until when this caller won.
    """
    until = now + settings.WEBHOOK_BREAKER_COOLDOWN
    won = Breaker.objects.filter(destination=destination, open_until__lte=now).update(
        open_until=until, updated_at=now
    )
    return until if won else None


def record_outcomes(
    tallies: dict[str, Tally], *, known: dict[str, BreakerState], now: datetime
) -> None:
    """Write each destination's tally (one upsert each); skip healthy no-news."""
    threshold = settings.WEBHOOK_BREAKER_THRESHOLD
    open_until = now + settings.WEBHOOK_BREAKER_COOLDOWN
    table = connection.ops.quote_name(Breaker._meta.db_table)
    for destination in sorted(tallies):
        tally = tallies[destination]
        if not tally.is_news:
            continue
        if not tally.failures and known.get(destination, CLOSED).is_healthy:
            continue
        first = apply(CLOSED, tally, now=now)
        if tally.acked:
            failures_sql, keep_sql, inc = "EXCLUDED.consecutive_failures", "NULL", []
        else:
            failures_sql = f"{table}.consecutive_failures + %s"
            keep_sql, inc = f"{table}.open_until", [tally.failures]
        sql = (
            f"INSERT INTO {table} (destination, consecutive_failures, open_until, "
            "updated_at) VALUES (%s, %s, %s, %s) ON CONFLICT (destination) DO UPDATE "
            f"SET consecutive_failures = {failures_sql}, "
            f"open_until = CASE WHEN ({failures_sql}) >= %s AND %s > 0 THEN %s "
            f"ELSE {keep_sql} END, updated_at = EXCLUDED.updated_at"
        )
        params = [
            destination,
            first.consecutive_failures,
            _dt(first.open_until),
            _dt(now),
            *inc,
            *inc,
            threshold,
            tally.failures,
            _dt(open_until),
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _dt(value: datetime | None) -> object:
    """A datetime as raw SQL wants it on this database."""
    return connection.ops.adapt_datetimefield_value(value)
