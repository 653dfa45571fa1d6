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
from collections.abc import Collection, Sequence
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import Count, Model

from delivery.models import Delivery
from events.models import Event
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
    if connection.vendor == "postgresql":
        rows = _claim_postgresql(
            limit=limit, now=now, until=until, token=token, skip=sorted(skip)
        )
    else:
        ids = _claim_portable(
            limit=limit, now=now, until=until, token=token, skip=sorted(skip)
        )
        rows = list(
            Delivery.objects.filter(id__in=ids, lease_token=token)
            .select_related("event")
            .order_by()
        )
    if not rows:
        return token, []
    # Each subscription once, however many of the batch's deliveries go to it:
    # loading one decrypts its secrets, which costs more than the row itself.
    subscriptions = _subscriptions(
        {row.subscription_id for row in rows if row.subscription_id is not None}
    )
    for row in rows:
        if row.subscription_id is not None:
            # None here: deleted since the claim (the engine cancels the row).
            row.subscription = subscriptions.get(row.subscription_id)
    return token, rows


class _Columns:
    """A model's columns in raw SQL, and its instances built from them.

    The claim runs for every batch; compiling its reads as querysets cost the
    worker more CPU than anything else in a batch but the HTTP requests. So
    they are plain SQL, and each row becomes an instance as Django's compiler
    makes one: every value through its field's converters (decryption of the
    encrypted fields, JSON), then Model.from_db.
    """

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.fields = model._meta.concrete_fields
        self.attnames = [field.attname for field in self.fields]
        self._converters: list[tuple[int, list, object]] | None = None

    def sql(self, alias: str | None = None) -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(f'{prefix}"{field.column}"' for field in self.fields)

    def build(self, values: Sequence) -> Model:
        if self._converters is None:
            self._converters = [
                (index, converters, field.cached_col)
                for index, field in enumerate(self.fields)
                if (
                    converters := field.get_db_converters(connection)
                    + connection.ops.get_db_converters(field.cached_col)
                )
            ]
        values = list(values)
        for index, converters, column in self._converters:
            for convert in converters:
                values[index] = convert(values[index], column, connection)
        return self.model.from_db(connection.alias, self.attnames, values)


_DELIVERY = _Columns(Delivery)
_EVENT = _Columns(Event)
_SUBSCRIPTION = _Columns(Subscription)
_EVENT_OF = Delivery._meta.get_field("event")


def _subscriptions(ids: set[uuid.UUID]) -> dict[uuid.UUID, Subscription]:
    if connection.vendor != "postgresql":
        return Subscription.objects.in_bulk(ids)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_SUBSCRIPTION.sql()} FROM {Subscription._meta.db_table} "
            "WHERE id = ANY(%s::uuid[])",
            [list(ids)],
        )
        built = [_SUBSCRIPTION.build(row) for row in cursor.fetchall()]
    return {subscription.id: subscription for subscription in built}


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
RETURNING {_DELIVERY.sql()}
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
RETURNING {_DELIVERY.sql()}
"""


def _with_events(claim: str) -> str:
    """The claim, returning each claimed row with its event: one round trip."""
    return (
        f"WITH claimed AS ({claim}) "
        f"SELECT {_DELIVERY.sql('c')}, {_EVENT.sql('e')} "
        f"FROM claimed c JOIN {Event._meta.db_table} e ON e.id = c.event_id"
    )


_OLDEST_CLAIM_ROWS = _with_events(_OLDEST_CLAIM)
_FAIR_CLAIM_ROWS = _with_events(_FAIR_CLAIM)


def _claim_postgresql(
    *, limit: int, now: datetime, until: datetime, token: uuid.UUID, skip: list[int]
) -> list[Delivery]:
    with connection.cursor() as cursor:
        cursor.execute(_DUE_TENANTS, [_PENDING, _PENDING, now])
        tenants = [row[0] for row in cursor.fetchall() if row[0] not in skip]
        if not tenants:
            return []
        if len(tenants) == 1 and not skip:
            claim = _OLDEST_CLAIM_ROWS
            params = [until, token, _PENDING, now, limit]
        else:
            claim = _FAIR_CLAIM_ROWS
            share = _share_of(limit, len(tenants))
            params = [tenants, _PENDING, now, share]
            params += [_PENDING, now, skip, limit, limit, limit, until, token]
        cursor.execute(claim, params)
        return _claimed(cursor.fetchall())


def _claimed(rows: list[tuple]) -> list[Delivery]:
    """The rows of a _with_events statement as deliveries with their events."""
    split = len(_DELIVERY.fields)
    claimed = []
    for row in rows:
        delivery = _DELIVERY.build(row[:split])
        _EVENT_OF.set_cached_value(delivery, _EVENT.build(row[split:]))
        claimed.append(delivery)
    return claimed


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
