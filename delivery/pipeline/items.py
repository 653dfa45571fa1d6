"""What the engine hands to recording: one item per claimed delivery."""

from dataclasses import dataclass
from datetime import datetime

from delivery.models import Delivery
from delivery.sender.types import SendResult

Status = Delivery.Status


@dataclass(frozen=True)
class Sent:
    """A request was made (or tried: no answer is an answer too)."""

    delivery: Delivery
    at: datetime
    result: SendResult
    destination: str


@dataclass(frozen=True)
class Skipped:
    """The destination's breaker is open: postponed without a request."""

    delivery: Delivery
    at: datetime
    until: datetime
    destination: str


@dataclass(frozen=True)
class Postponed:
    """Not sent now and no attempt recorded: the destination asked everyone to
    wait (Retry-After), or a rate limit has no room yet. Due again at `until`.
    `cause` is one of CAUSES (the metric's label), `reason` the log's text."""

    RETRY_AFTER = "retry_after"
    RATE_LIMIT = "rate_limit"
    CAUSES = (RETRY_AFTER, RATE_LIMIT)

    delivery: Delivery
    until: datetime
    reason: str
    cause: str


@dataclass(frozen=True)
class Settled:
    """Decided at claim time without an attempt (held, cancelled, expired), or
    `pending` again now: released unsent (its lease would have run out)."""

    delivery: Delivery
    status: Status


Item = Sent | Skipped | Postponed | Settled


def describe(result: SendResult) -> str:
    """`HTTP 503` or the sender's error: for last_error and paused_reason."""
    if result.status_code is not None:
        return f"HTTP {result.status_code}"
    return result.error or "no response"
