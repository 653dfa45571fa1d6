"""Claiming due deliveries: a conditional UPDATE that takes a lease.

Due = `status='pending' AND next_attempt_at <= now` (the partial index
`delivery_due`). Claiming moves next_attempt_at to now + WEBHOOK_CLAIM_LEASE
and sets a fresh lease_token, so a claimed row is not due for anyone else, and
a row whose worker died becomes due again by itself when the lease runs out.
Results are written only while the row still carries the token.
"""

import uuid
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Count

from delivery.models import Delivery
from subscriptions.models import Subscription

_PENDING = Delivery.Status.PENDING


def claim_due(*, limit: int, now: datetime) -> tuple[uuid.UUID, list[Delivery]]:
    """Lease up to `limit` due deliveries, oldest due first.

    Returns the lease token and the claimed rows with their event and
    subscription loaded. Never returns a row another worker holds.
    """
    token = uuid.uuid4()
    lease_until = now + settings.WEBHOOK_CLAIM_LEASE
    if connection.vendor == "postgresql":
        ids = _claim_postgresql(limit=limit, now=now, until=lease_until, token=token)
    else:
        ids = _claim_portable(limit=limit, now=now, until=lease_until, token=token)
    if not ids:
        return token, []
    rows = list(
        Delivery.objects.filter(id__in=ids, lease_token=token)
        .select_related("event")
        .order_by()
    )
    # Each subscription once, however many of the batch's deliveries go to it:
    # loading one decrypts its secrets, which costs more than the row itself.
    subscriptions = Subscription.objects.in_bulk(
        {row.subscription_id for row in rows if row.subscription_id is not None}
    )
    for row in rows:
        if row.subscription_id is not None:
            # None here: deleted since the claim (the engine cancels the row).
            row.subscription = subscriptions.get(row.subscription_id)
    return token, rows


def _claim_postgresql(
    *, limit: int, now: datetime, until: datetime, token: uuid.UUID
) -> list[uuid.UUID]:
    # One statement: SKIP LOCKED lets concurrent claimers take disjoint rows
    # instead of queueing behind each other.
    table = connection.ops.quote_name(Delivery._meta.db_table)
    sql = (
        f"UPDATE {table} SET next_attempt_at = %s, lease_token = %s "
        f"WHERE id IN (SELECT id FROM {table} "
        "WHERE status = %s AND next_attempt_at <= %s "
        "ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) "
        "RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [until, token, _PENDING, now, limit])
        return [row[0] for row in cursor.fetchall()]


def _claim_portable(
    *, limit: int, now: datetime, until: datetime, token: uuid.UUID
) -> list[uuid.UUID]:
    # SQLite (make run): pick candidates, then the same conditional UPDATE;
    # a row someone else claimed in between no longer matches the WHERE.
    due = Delivery.objects.filter(status=_PENDING, next_attempt_at__lte=now)
    candidates = list(
        due.order_by("next_attempt_at").values_list("id", flat=True)[:limit]
    )
    if not candidates:
        return []
    due.filter(id__in=candidates).update(next_attempt_at=until, lease_token=token)
    return list(Delivery.objects.filter(lease_token=token).values_list("id", flat=True))


def count_due(*, now: datetime, cap: int) -> int:
    """How many deliveries are due, counting at most `cap` (an index range scan
    on `delivery_due`, so a large backlog scheduled for later costs nothing)."""
    due = Delivery.objects.filter(status=_PENDING, next_attempt_at__lte=now)
    return due.order_by()[:cap].aggregate(n=Count("id"))["n"] if cap else 0
