"""Claiming due deliveries: a conditional UPDATE that takes a lease.

Due = `status='pending' AND next_attempt_at <= now` (the partial index
`delivery_due`). Claiming moves next_attempt_at to now + WEBHOOK_CLAIM_LEASE
and sets a fresh lease_token, so a claimed row is not due for anyone else, and
a row whose worker died becomes due again by itself when the lease runs out.
Results are written only while the row still carries the token.

Fair between tenants: a claim gives each tenant (Client) with due work an
equal share of the batch, its oldest due rows first, and fills what is left
in global due order. So one tenant's backlog of thousands of due rows cannot
keep another tenant's few rows waiting until it has drained; with a single
tenant due (the common case) the claim is the plain oldest-first one.
docs/architecture.md ("Fairness between tenants") has the measurements.
"""

import uuid
from collections.abc import Collection
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Count

from delivery.models import Delivery
from subscriptions.models import Subscription

_PENDING = Delivery.Status.PENDING


def claim_due(
    *, limit: int, now: datetime, skip: Collection[int] = ()
) -> tuple[uuid.UUID, list[Delivery]]:
    """Lease up to `limit` due deliveries: each tenant's share, oldest first,
    none of the tenants (client ids) in `skip`.

    Returns the lease token and the claimed rows with their event and
    subscription loaded. Never returns a row another worker holds.
    """
    token = uuid.uuid4()
    until = now + settings.WEBHOOK_CLAIM_LEASE
    claim = _claim_postgresql if connection.vendor == "postgresql" else _claim_portable
    ids = claim(limit=limit, now=now, until=until, token=token, skip=sorted(skip))
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


def _share_of(limit: int, tenants: int) -> int:
    """Rows each tenant with due work gets first (at least one)."""
    return max(limit // max(tenants, 1), 1)


_TABLE = Delivery._meta.db_table

# The tenants with due work: a skip scan over `delivery_client_due`, one index
# descent per tenant with pending rows, whose first entry is that tenant's
# oldest pending row. The row comparisons keep the planner on this index (the
# only one led by client_id and next_attempt_at).
_DUE_TENANTS = f"""
WITH RECURSIVE heads(client_id, due) AS (
    (SELECT client_id, next_attempt_at FROM {_TABLE}
     WHERE status = %s ORDER BY client_id, next_attempt_at LIMIT 1)
  UNION ALL
    SELECT h.client_id, h.next_attempt_at FROM heads t CROSS JOIN LATERAL (
        SELECT d.client_id, d.next_attempt_at FROM {_TABLE} d
        WHERE d.status = %s
          AND (d.client_id, d.next_attempt_at) > (t.client_id, 'infinity')
        ORDER BY d.client_id, d.next_attempt_at LIMIT 1
    ) h
)
SELECT client_id FROM heads WHERE due <= %s
"""

# One statement, so SKIP LOCKED lets concurrent claimers take disjoint rows
# instead of queueing behind each other.
_OLDEST_CLAIM = f"""
UPDATE {_TABLE} SET next_attempt_at = %s, lease_token = %s
WHERE id IN (
    SELECT id FROM {_TABLE} WHERE status = %s AND next_attempt_at <= %s
    ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED
)
RETURNING id
"""

# `fair`: each listed tenant's oldest due rows, up to its share; `rest`: the
# oldest other due rows, read (and locked) only as far as the batch needs
# them. Every LIMIT is a constant and the tenants a literal array, so the
# planner's estimates stay small (with a computed LIMIT it guesses 10% of the
# table, and PostgreSQL's JIT then costs more than the claim).
_FAIR_CLAIM = f"""
WITH fair AS (
    SELECT c.id, c.next_attempt_at
    FROM unnest(%s::bigint[]) AS t(client_id) CROSS JOIN LATERAL (
        SELECT d.id, d.next_attempt_at FROM {_TABLE} d
        WHERE d.status = %s
          AND (d.client_id, d.next_attempt_at) >= (t.client_id, '-infinity')
          AND (d.client_id, d.next_attempt_at) <= (t.client_id, %s)
        ORDER BY d.client_id, d.next_attempt_at LIMIT %s
        FOR UPDATE SKIP LOCKED
    ) c
),
rest AS (
    SELECT id FROM {_TABLE}
    WHERE status = %s AND next_attempt_at <= %s AND id NOT IN (SELECT id FROM fair)
      AND client_id <> ALL(%s::bigint[])
    ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED
),
chosen AS (
    (SELECT id FROM fair ORDER BY next_attempt_at LIMIT %s)
    UNION ALL (SELECT id FROM rest)
    LIMIT %s
)
UPDATE {_TABLE} SET next_attempt_at = %s, lease_token = %s
WHERE id IN (SELECT id FROM chosen)
RETURNING id
"""


def _claim_postgresql(
    *, limit: int, now: datetime, until: datetime, token: uuid.UUID, skip: list[int]
) -> list[uuid.UUID]:
    with connection.cursor() as cursor:
        cursor.execute(_DUE_TENANTS, [_PENDING, _PENDING, now])
        tenants = [row[0] for row in cursor.fetchall() if row[0] not in skip]
        if not tenants:
            return []
        if len(tenants) == 1 and not skip:
            cursor.execute(_OLDEST_CLAIM, [until, token, _PENDING, now, limit])
        else:
            share = _share_of(limit, len(tenants))
            cursor.execute(
                _FAIR_CLAIM,
                [tenants, _PENDING, now, share]
                + [_PENDING, now, skip, limit, limit, limit, until, token],
            )
        return [row[0] for row in cursor.fetchall()]


def _claim_portable(
    *, limit: int, now: datetime, until: datetime, token: uuid.UUID, skip: list[int]
) -> list[uuid.UUID]:
    # SQLite (make run): the same choice in several reads, then the same
    # conditional UPDATE; a row someone else claimed in between no longer
    # matches the WHERE.
    due = Delivery.objects.filter(status=_PENDING, next_attempt_at__lte=now)
    due = due.exclude(client_id__in=skip)
    oldest = due.order_by("next_attempt_at").values_list("id", flat=True)
    tenants = list(due.order_by().values_list("client_id", flat=True).distinct())
    share = _share_of(limit, len(tenants))
    fair = [
        id_ for client in tenants for id_ in oldest.filter(client_id=client)[:share]
    ]
    candidates = fair[:limit]
    candidates += list(oldest.exclude(id__in=fair)[: limit - len(candidates)])
    if not candidates:
        return []
    due.filter(id__in=candidates).update(next_attempt_at=until, lease_token=token)
    return list(Delivery.objects.filter(lease_token=token).values_list("id", flat=True))


def count_due(*, now: datetime, cap: int) -> int:
    """How many deliveries are due, counting at most `cap` (an index range scan
    on `delivery_due`, so a large backlog scheduled for later costs nothing)."""
    due = Delivery.objects.filter(status=_PENDING, next_attempt_at__lte=now)
    return due.order_by()[:cap].aggregate(n=Count("id"))["n"] if cap else 0
