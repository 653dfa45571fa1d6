"""The log line of an attempt: one per request made (or skipped), written
where the attempt is recorded.

It names the delivery, its event and subscription, the outcome, status code,
duration and the sender's error, and where the request went as scheme, host,
port and path only: a URL's query string or user info may carry credentials,
and header values, tokens and secrets never reach this module.
"""

import logging
from urllib.parse import urlsplit

from delivery.models import Attempt, Delivery

logger = logging.getLogger("webhooks.attempts")


def safe_url(url: str) -> str:
    """`https://user:pw@Example.com:8443/hooks?key=x` -> `https://example.com:8443/hooks`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def log_attempt(*, delivery: Delivery, attempt: Attempt) -> None:
    """One INFO line for the attempt; uses only what is already loaded."""
    if not logger.isEnabledFor(logging.INFO):
        return
    subscription = delivery.subscription
    logger.info(
        "attempt %s of delivery %s: %s",
        attempt.number,
        delivery.id,
        attempt.outcome,
        extra={
            "event_id": str(delivery.event_id),
            "delivery_id": str(delivery.id),
            "subscription_id": (
                str(delivery.subscription_id) if delivery.subscription_id else None
            ),
            "kind": delivery.kind,
            "attempt": attempt.number,
            "outcome": attempt.outcome,
            "status_code": attempt.status_code,
            "duration_ms": attempt.duration_ms,
            "error": attempt.error,
            "url": safe_url(subscription.url) if subscription is not None else None,
        },
    )
