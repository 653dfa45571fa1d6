"""Portal access: one-time links exchanged for client-bound browser sessions.

A link's token and a session's cookie value are random strings handed out
once; only their SHA-256 is stored, so a database read gives no way in.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from portal.models import PortalSession
from subscriptions.models import Client

# A link is for a customer who is being sent to the portal right now.
LINK_TTL = timedelta(minutes=15)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class PortalLink:
    token: str
    expires_at: datetime


class LinkRefused(Exception):
    """The link cannot be opened; the message says why, for the customer."""


def create_link(*, client: Client) -> PortalLink:
    """A new one-time link token for the client, valid for LINK_TTL.

    Also forgets the client's links and sessions that can no longer be used,
    so the table stays the size of what is live.
    """
    now = timezone.now()
    PortalSession.objects.filter(client=client, link_expires_at__lte=now).filter(
        Q(session_expires_at__isnull=True) | Q(session_expires_at__lte=now)
    ).delete()
    token = secrets.token_urlsafe(32)
    expires_at = now + LINK_TTL
    PortalSession.objects.create(
        client=client, link_hash=_hash(token), link_expires_at=expires_at
    )
    return PortalLink(token=token, expires_at=expires_at)


@dataclass(frozen=True)
class OpenedSession:
    client: Client
    cookie: str
    expires_at: datetime


def open_session(*, token: str) -> OpenedSession:
    """Exchange a link's token for a session cookie value (WEBHOOK_PORTAL_SESSION_TTL).

    One UPDATE accepts the link only if it is unused and unexpired: of two
    concurrent uses, the second waits for the first's row lock, re-reads the
    row, finds opened_at set and changes nothing. Raises LinkRefused.
    """
    now = timezone.now()
    link_hash = _hash(token)
    cookie = secrets.token_urlsafe(32)
    expires_at = now + settings.WEBHOOK_PORTAL_SESSION_TTL
    accepted = PortalSession.objects.filter(
        link_hash=link_hash, opened_at__isnull=True, link_expires_at__gt=now
    ).update(opened_at=now, session_hash=_hash(cookie), session_expires_at=expires_at)
    if not accepted:
        raise LinkRefused(_refusal(link_hash))
    row = PortalSession.objects.select_related("client").get(link_hash=link_hash)
    return OpenedSession(client=row.client, cookie=cookie, expires_at=expires_at)


def _refusal(link_hash: str) -> str:
    row = PortalSession.objects.filter(link_hash=link_hash).first()
    if row is None:
        return "This portal link is not valid."
    if row.opened_at is not None:
        return "This portal link has already been used."
    return "This portal link has expired."


def end_session(*, cookie: str) -> None:
    """Sign out: the session with this cookie value stops working at once."""
    if cookie:
        PortalSession.objects.filter(session_hash=_hash(cookie)).update(
            session_expires_at=timezone.now()
        )


def session_client(*, cookie: str) -> Client | None:
    """The client of a live session with this cookie value, else None."""
    if not cookie:
        return None
    row = (
        PortalSession.objects.select_related("client")
        .filter(session_hash=_hash(cookie), session_expires_at__gt=timezone.now())
        .first()
    )
    return row.client if row else None
