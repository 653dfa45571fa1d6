"""What an answer means: SendResult -> outcome and the delivery's next step.

The table (docs/spec.md, "Delivery"), as data:

    answer                       outcome            next                  failure?
    2xx                          ack                succeeded             no, resets
    409                          conflict_retry     fixed 409 interval    no
    400                          permanent_failure  failed                no
    429                          retry              backoff, Retry-After  no
    anything else, no answer     failure            backoff               yes

"failure?" = counts towards pausing the subscription. A 410 Gone is a
failure that also disables the webhook (recording: health.disable_gone), so
its retry is held until the webhook is resumed.

The destination's circuit breaker, shared by every tenant sending to that
scheme://host:port, reads answers differently (`destination_health`): any
HTTP answer below 500 shows the host is up (it answers for one path, i.e. for
one tenant's webhook); a 5xx, or no answer because the destination failed
(refused, reset, timed out, TLS), counts against it; a failure of our own (a
request that cannot be encoded or built, a blocked destination, a name that
does not resolve) says nothing about it. So one tenant's 404s cannot postpone
another tenant's deliveries to the same host.
A retry that would fall after the delivery's expires_at expires it now. A test
delivery (POST /webhooks/{id}/test) is never retried and never counts towards
pausing or the circuit breaker.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum

from django.conf import settings

from delivery.models import Attempt, Delivery
from delivery.policy import backoff
from delivery.sender.types import SendResult

Outcome = Attempt.Outcome
Status = Delivery.Status


class Wait(Enum):
    NONE = "none"  # final: no retry
    BACKOFF = "backoff"  # the backoff table, next step
    CONFLICT = "conflict"  # WEBHOOK_CONFLICT_RETRY_INTERVAL, no step consumed


@dataclass(frozen=True)
class Rule:
    outcome: Outcome
    wait: Wait
    final_status: Status | None
    endpoint_failure: bool
    honours_retry_after: bool = False


RULES: dict[Outcome, Rule] = {
    Outcome.ACK: Rule(Outcome.ACK, Wait.NONE, Status.SUCCEEDED, False),
    Outcome.CONFLICT_RETRY: Rule(Outcome.CONFLICT_RETRY, Wait.CONFLICT, None, False),
    Outcome.PERMANENT_FAILURE: Rule(
        Outcome.PERMANENT_FAILURE, Wait.NONE, Status.FAILED, False
    ),
    Outcome.RETRY: Rule(
        Outcome.RETRY, Wait.BACKOFF, None, False, honours_retry_after=True
    ),
    Outcome.FAILURE: Rule(Outcome.FAILURE, Wait.BACKOFF, None, True),
}


def outcome_for(status_code: int | None) -> Outcome:
    """The table's first column: which outcome an HTTP status (or None) is."""
    if status_code is None:
        return Outcome.FAILURE
    if 200 <= status_code < 300:
        return Outcome.ACK
    if status_code == 409:
        return Outcome.CONFLICT_RETRY
    if status_code == 400:
        return Outcome.PERMANENT_FAILURE
    if status_code == 429:
        return Outcome.RETRY
    return Outcome.FAILURE


def destination_health(result: SendResult) -> bool | None:
    """For the destination's breaker: True when the host answered (below 500),
    False when it failed (5xx, refused, reset, timeout, TLS), None when the
    failure was not its doing."""
    if result.status_code is None:
        return False if result.transport_failure else None
    return result.status_code < 500


def parse_retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    """`Retry-After: 120` or `Retry-After: <HTTP date>` -> the wait; None if absent
    or unreadable. A date in the past is a wait of zero."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return timedelta(seconds=int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(when - now, timedelta(0))


def asked_wait(result: SendResult, *, now: datetime) -> timedelta | None:
    """A 429 or 503 with a readable, non-zero `Retry-After`: how long the
    destination asked everyone to wait (for backpressure: breaker.py)."""
    if result.status_code not in (429, 503):
        return None
    wait = parse_retry_after(result.retry_after, now=now)
    return wait if wait else None


@dataclass(frozen=True)
class Verdict:
    """The decision for one attempt."""

    outcome: Outcome
    # The delivery's status after this attempt: pending (retry), or final.
    status: Status
    # When pending: how long until the retry.
    retry_in: timedelta | None
    backoff_step: int
    # Counts towards pausing the subscription and opening the breaker.
    endpoint_failure: bool

    @property
    def is_ack(self) -> bool:
        return self.outcome == Outcome.ACK


def classify(
    result: SendResult,
    *,
    now: datetime,
    expires_at: datetime,
    backoff_step: int = 0,
    kind: str = Delivery.Kind.EVENT,
) -> Verdict:
    """Apply the table to one answer. Pure apart from the jitter's randomness."""
    rule = RULES[outcome_for(result.status_code)]
    if kind == Delivery.Kind.TEST:
        return _test_verdict(rule, backoff_step)
    if rule.wait is Wait.NONE:
        status = rule.final_status or Status.FAILED
        return Verdict(rule.outcome, status, None, backoff_step, rule.endpoint_failure)

    step = backoff_step
    if rule.wait is Wait.CONFLICT:
        wait = settings.WEBHOOK_CONFLICT_RETRY_INTERVAL
    else:
        wait = backoff.retry_delay(backoff_step)
        step = backoff_step + 1
        if rule.honours_retry_after:
            asked = parse_retry_after(result.retry_after, now=now)
            if asked is not None:
                wait = max(wait, min(asked, settings.WEBHOOK_RETRY_AFTER_MAX))
    status = Status.EXPIRED if now + wait > expires_at else Status.PENDING
    return Verdict(
        rule.outcome,
        status,
        wait if status == Status.PENDING else None,
        step,
        rule.endpoint_failure,
    )


def _test_verdict(rule: Rule, backoff_step: int) -> Verdict:
    # One request, no retry: anything but a 2xx is the end of it.
    if rule.outcome == Outcome.ACK:
        return Verdict(Outcome.ACK, Status.SUCCEEDED, None, backoff_step, False)
    outcome = (
        Outcome.PERMANENT_FAILURE
        if rule.outcome == Outcome.PERMANENT_FAILURE
        else Outcome.FAILURE
    )
    return Verdict(outcome, Status.FAILED, None, backoff_step, False)
