"""One batch of deliveries: claim, send concurrently, record as results arrive.

The Celery thread that runs a batch does all of its database work; the HTTP
requests run on one module-level bounded pool (fair_pool.py: its queue takes
tenants in turn) whose threads never touch the database, so database
connections stay bounded by the worker's concurrency while up to
WEBHOOK_HTTP_CONCURRENCY requests are in flight. No transaction is open while
a request is.
"""

import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from delivery.models import Delivery
from delivery.pipeline import notifications, outbound, wakeups
from delivery.pipeline.claiming import claim_due
from delivery.pipeline.fair_pool import FairPool
from delivery.pipeline.items import Item, Postponed, Sent, Settled, Skipped
from delivery.pipeline.recording import record
from delivery.policy import breaker, ratelimit
from delivery.sender import http
from delivery.sender.types import OutboundRequest, SendResult
from subscriptions.models import Subscription

logger = logging.getLogger("webhooks.delivery")

# Results are written in groups of at most this many, or after this long, so
# one slow receiver does not hold back the others' writes.
FLUSH_SIZE = 100
FLUSH_AFTER = 0.05

_pool: FairPool | None = None
_pool_lock = threading.Lock()


def http_pool() -> FairPool:
    """The process's one sender pool (created lazily: after a fork, per child)."""
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                _pool = FairPool(
                    max_workers=settings.WEBHOOK_HTTP_CONCURRENCY,
                    thread_name_prefix="webhook-http",
                )
    return _pool


@dataclass(frozen=True)
class BatchReport:
    claimed: int = 0
    sent: int = 0
    skipped: int = 0
    settled: int = 0


# A request still queued for a sender thread this close to its lease running
# out is not sent: the row may be claimed again by then, and two workers must
# never send the same attempt at once.
NOT_SENT = SendResult(None, 0, error="not sent: the claim ran out while queued")
# Nor is one whose delivery's TTL ran out while it waited: no attempt is ever
# made after a delivery's expiry.
EXPIRED_WHILE_QUEUED = SendResult(None, 0, error="not sent: expired while queued")


def deliver_due_batch(*, limit: int) -> BatchReport:
    """Claim up to `limit` due deliveries and deliver them; see the module doc.

    If the batch was full, another deliver_due is enqueued first so a backlog
    drains without waiting for dispatch_due. Tenants whose requests already
    waiting in this process would take more than two dispatch intervals to
    start are left out (their rows would only wait here, holding this
    thread, while another tenant's new work found no thread to claim it);
    the pool wakes a worker once their queue is shorter.
    """
    now = timezone.now()
    lease_ends = time.monotonic() + settings.WEBHOOK_CLAIM_LEASE.total_seconds()
    # Crowded: more than two sweeps' worth of its requests wait already, so a
    # wake-up lost to another worker process costs it nothing (dispatch_due
    # wakes again before its queue runs dry).
    crowded = http_pool().crowded(
        2 * settings.WEBHOOK_DISPATCH_INTERVAL.total_seconds()
    )
    _, claimed = claim_due(limit=limit, now=now, skip=crowded)
    if crowded:
        http_pool().when_room(crowded, _wake_one)
    if not claimed:
        return BatchReport()
    if len(claimed) >= limit:
        transaction.on_commit(lambda: wakeups.send_wakeups(count=1))

    states = breaker.load_states(
        breaker.destination_of(d.subscription.url)
        for d in claimed
        if d.subscription is not None
    )
    early: list[Item] = []
    to_send: list[tuple[Delivery, str, OutboundRequest | None]] = []
    probes: dict[str, datetime] = {}
    for delivery in claimed:
        item = _triage(delivery, states, probes, now=now)
        if item is None:
            request = _build(delivery, now=now)
            url = request.url if request else getattr(delivery.subscription, "url", "")
            to_send.append((delivery, breaker.destination_of(url), request))
        else:
            early.append(item)

    deadline = time.monotonic() + _send_window()
    futures: dict[Future[tuple[datetime, Outcome]], tuple[Delivery, str]]
    futures = {}
    for delivery, destination, request in to_send:
        limits = ()
        if delivery.subscription is not None:  # notifications are not limited
            limits = ratelimit.limits_for(
                subscription=delivery.subscription, destination=destination
            )
        future = http_pool().submit(
            delivery.client_id, _send, request, deadline, delivery.expires_at, limits
        )
        futures[future] = (delivery, destination)
    _record(early, states, lease_ends)
    _drain(futures, states, lease_ends)
    skipped = sum(isinstance(item, (Skipped, Postponed)) for item in early)
    return BatchReport(len(claimed), len(to_send), skipped, len(early) - skipped)


def _wake_one() -> None:
    wakeups.send_wakeups(count=1)


def _send_window() -> float:
    # The lease must outlast the request: a request that has not started by
    # then could still be running when the row is claimed again.
    lease = settings.WEBHOOK_CLAIM_LEASE.total_seconds()
    request = (settings.WEBHOOK_CONNECT_TIMEOUT + settings.WEBHOOK_TIMEOUT) * 2
    return max(lease - request.total_seconds(), lease / 2)


def _triage(
    delivery: Delivery,
    states: dict[str, breaker.BreakerState],
    probes: dict[str, datetime],
    *,
    now: datetime,
) -> Item | None:
    """Decide what needs no request; None means send it."""
    if delivery.kind in Delivery.NOTIFICATIONS:
        # No webhook, breaker or rate limit of their own: only the TTL, and
        # a target that may have been removed since (nowhere to send it).
        if delivery.expires_at <= now:
            return Settled(delivery, Delivery.Status.EXPIRED)
        if notifications.target_of(delivery) is None:
            return Settled(delivery, Delivery.Status.CANCELLED)
        return None
    subscription = delivery.subscription
    if subscription is None:
        return Settled(delivery, Delivery.Status.CANCELLED)
    if delivery.expires_at <= now:
        return Settled(delivery, Delivery.Status.EXPIRED)
    if delivery.kind == Delivery.Kind.TEST:
        return None  # on demand: sent even while paused or the breaker is open
    if subscription.status in Subscription.HOLDING:
        return Settled(delivery, Delivery.Status.HELD)
    destination = breaker.destination_of(subscription.url)
    state = states[destination]
    if state.waits(now):
        until = state.backpressure_until
        reason = f"{destination} asked to wait (Retry-After) until {until.isoformat()}"
        return Postponed(delivery, until, reason, Postponed.RETRY_AFTER)
    if state.is_open(now):
        return Skipped(delivery, now, state.open_until, destination)
    if state.wants_probe(now):
        if destination in probes:
            return Skipped(delivery, now, probes[destination], destination)
        won = breaker.claim_probe(destination, now=now)
        if won is None:  # another worker is probing
            until = now + settings.WEBHOOK_BREAKER_COOLDOWN
            probes[destination] = until
            return Skipped(delivery, now, until, destination)
        probes[destination] = won
    return None


def _build(delivery: Delivery, *, now: datetime) -> OutboundRequest | None:
    try:
        if delivery.kind in Delivery.NOTIFICATIONS:
            target = notifications.target_of(delivery)
            if target is None:
                return None
            return outbound.build_notice(
                event=delivery.event, url=target.url, secret=target.secret, now=now
            )
        return outbound.build_request(
            event=delivery.event, subscription=delivery.subscription, now=now
        )
    except Exception:  # e.g. a secret that no longer decrypts: an operator issue
        logger.exception("cannot build the request of delivery %s", delivery.id)
        return None


@dataclass(frozen=True)
class RateLimited:
    """Not sent: a rate limit has no room before `until` (no attempt)."""

    until: datetime
    reason: str


Outcome = SendResult | RateLimited


def _send(
    request: OutboundRequest | None,
    deadline: float,
    expires_at: datetime,
    limits: tuple[ratelimit.Limit, ...] = (),
) -> tuple[datetime, Outcome]:
    """Runs on a sender thread: no database work here."""
    started = timezone.now()
    if request is None:
        return started, SendResult(None, 0, error="cannot build the request")
    if time.monotonic() > deadline:
        return started, NOT_SENT
    if started >= expires_at:
        return started, EXPIRED_WHILE_QUEUED
    if limits:
        budget = min(ratelimit.sleep_budget(limits), deadline - time.monotonic())
        postpone = ratelimit.acquire(limits, max_wait=budget)
        started = timezone.now()
        if postpone:
            until = started + timedelta(seconds=postpone)
            limited = ratelimit.describe(limits)
            reason = f"rate limit {limited}: postponed to {until.isoformat()}"
            return started, RateLimited(until, reason)
    try:
        return started, http.send(request)
    except Exception as exc:  # send() promises not to raise; a bug must not leak
        logger.exception("the sender raised")
        error = f"sender error: {exc.__class__.__name__}"
        return started, SendResult(None, 0, error=error)


def _drain(
    futures: dict[Future[tuple[datetime, Outcome]], tuple[Delivery, str]],
    states: dict[str, breaker.BreakerState],
    lease_ends: float,
) -> None:
    """Record results as they complete, in small groups."""
    # Completed futures arrive on a queue: concurrent.futures.wait() would
    # register with every pending future on each call (quadratic in the batch).
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    for future in futures:
        future.add_done_callback(finished.put)
    remaining = len(futures)
    buffer: list[Item] = []
    first_at = 0.0
    while remaining:
        timeout = None
        if buffer:
            timeout = max(0.0, first_at + FLUSH_AFTER - time.monotonic())
        try:
            future = finished.get(timeout=timeout)
        except queue.Empty:
            future = None
        if future is not None:
            remaining -= 1
            if not buffer:
                first_at = time.monotonic()
            delivery, destination = futures[future]
            started, result = future.result()
            if result is NOT_SENT:
                buffer.append(Settled(delivery, Delivery.Status.PENDING))
            elif result is EXPIRED_WHILE_QUEUED:
                buffer.append(Settled(delivery, Delivery.Status.EXPIRED))
            elif isinstance(result, RateLimited):
                buffer.append(
                    Postponed(
                        delivery, result.until, result.reason, Postponed.RATE_LIMIT
                    )
                )
            else:
                buffer.append(Sent(delivery, started, result, destination))
        if buffer and (
            len(buffer) >= FLUSH_SIZE
            or not remaining
            or time.monotonic() - first_at >= FLUSH_AFTER
        ):
            _record(buffer, states, lease_ends)
            buffer = []


# Pause between tries to write a flush while the database is unreachable.
RECORD_RETRY_PAUSE = 0.25


def _record(
    items: list[Item],
    states: dict[str, breaker.BreakerState],
    lease_ends: float,
) -> None:
    """record(), tried again while the database is unreachable and the claim
    lasts: the receivers already have these requests, and a result that is
    not written is sent again once the lease runs out (a duplicate for each,
    e.g. on every PostgreSQL restart). After the lease, another worker may
    have the rows; the error is raised and the lease decides, as before."""
    while True:
        try:
            record(items, breakers=states)
            return
        except (OperationalError, InterfaceError):
            # Inside a caller's transaction there is nothing to retry alone.
            late = time.monotonic() + RECORD_RETRY_PAUSE >= lease_ends
            if late or connection.in_atomic_block:
                raise
            logger.warning("database unreachable; writing %d results again", len(items))
            connection.close()  # the next try connects afresh
            time.sleep(RECORD_RETRY_PAUSE)
