"""The log line of an attempt: one per request made (or skipped), written
where the attempt is recorded.

It names the delivery, its event and subscription, the outcome, status code,
duration and the sender's error, and where the request went. By default that
is scheme, host and port plus a short keyed digest of the path and query
(`https://example.com:443/…#3fa2c1`): receivers put credentials in paths too
(`/services/T0/B0/<token>`, `/hooks/<secret>`), and logs travel further and
live longer than the database. The digest tells two webhooks on one host
apart without revealing either path; it is an HMAC under SECRET_KEY, so a
guessed path cannot be confirmed from the logs alone. WEBHOOK_LOG_FULL_URLS
keeps the path (never the query string or user info). Header values, tokens
and secrets never reach this module.
"""

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.crypto import salted_hmac

from delivery.models import Attempt, Delivery

logger = logging.getLogger("webhooks.attempts")


_DEFAULT_PORTS = {"http": 80, "https": 443}
_DIGEST_SALT = "webhooks.attempt_log.url"


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


def redacted_url(url: str) -> str:
    """`https://u:pw@Example.com/hooks/s3cr3t?k=x` -> `https://example.com:443/…#3fa2c1`:
    scheme, host and (always explicit) port, and 6 hex digits of an HMAC of
    the path and query. A bare `/` has nothing to hide and stays."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    origin = f"{scheme}://{host}" + (f":{port}" if port else "")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    if target in ("", "/"):
        return f"{origin}/"
    digest = salted_hmac(_DIGEST_SALT, target, algorithm="sha256").hexdigest()
    return f"{origin}/…#{digest[:6]}"


def logged_url(url: str) -> str:
    """The destination as attempt log lines name it (WEBHOOK_LOG_FULL_URLS)."""
    return safe_url(url) if settings.WEBHOOK_LOG_FULL_URLS else redacted_url(url)


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
            "url": logged_url(subscription.url) if subscription is not None else None,
        },
    )
