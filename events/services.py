"""Publishing: an event and its fan-out, written in one transaction."""

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from delivery.services import (
    CreatedDeliveries,
    create_deliveries_for,
    deliveries_insert_sql,
    wake_workers,
)
from events.models import Event, EventType
from events.selectors import (
    matching_subscriptions,
    published_under,
    routing_condition,
)
from subscriptions.models import Client, Subscription
from subscriptions.services import end_tracking_sql, end_tracking_subscriptions
from webhooks_project import metrics, prepared
from webhooks_project.lookups import LookupCache

# Created only by the test endpoint (POST /webhooks/{id}/test), never published.
RESERVED_TYPE = "TEST"

# What every publish looks up: positives only, for WEBHOOK_LOOKUP_CACHE_TTL
# (a type or tenant added a moment ago works at once; one changed or deleted
# within that time on every process, at once on this one: EventsConfig.ready).
event_types: LookupCache[EventType] = LookupCache("event types")
tenants: LookupCache[Client] = LookupCache("tenants")


def forget_lookups(**kwargs: object) -> None:
    """A receiver of post_save/post_delete of EventType and Client (connected
    in EventsConfig.ready)."""
    event_types.clear()
    tenants.clear()


class PublishError(Exception):
    """An event that cannot be published; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        # In a batch (publish_events): the position of the failing event.
        self.index: int | None = None


class InvalidEvent(PublishError):
    """The input does not describe a publishable event (the API's 400)."""


class EventTooLarge(PublishError):
    """The payload is over WEBHOOK_MAX_PAYLOAD_BYTES (the API's 413)."""


class TenantNotAllowed(PublishError):
    """The publish key is bound to other tenants (the API's 403)."""


class FanOutExceeded(PublishError):
    """The event would create more deliveries than WEBHOOK_MAX_FANOUT (the
    API's 409); nothing was written."""

    def __init__(self, event_id: UUID, deliveries: int) -> None:
        quota = settings.WEBHOOK_MAX_FANOUT
        super().__init__(
            "deliveries",
            f"Fan-out quota exceeded: the event would create {deliveries} "
            f"deliveries, more than WEBHOOK_MAX_FANOUT ({quota}); nothing was "
            "published.",
        )
        self.event_id = event_id


# The SQLSTATE of webhook_fanout_within() (events/migrations/0004).
_FANOUT_SQLSTATE = "WHF01"


@dataclass(frozen=True)
class PublishResult:
    event: Event
    # Created by this call, or (created=False) the existing event's count.
    deliveries: int
    created: bool
    # Deliveries created pending and due now (held ones are not).
    due: int = 0


def publish_event(
    *, publisher: Client, tenants: Collection[int] | None = None, **fields: Any
) -> PublishResult:
    """Publish an event: insert it and one delivery per matching subscription.

    `fields` are those of one event: type, payload, and optionally subtype,
    resource_id, resource_url, user_id, tenant, occurred_at, idempotency_key.

    The event and its deliveries are written in one transaction (joining the
    caller's, if any); workers are woken when it commits, and a broker that is
    down does not fail the publish (dispatch_due finds the rows).

    Idempotent per (publisher, idempotency_key): when the publisher already
    published under that key, nothing is written and the existing event is
    returned with created=False, also when two calls race.

    `tenants`: the ids of the tenants the API key is bound to (None: any,
    ApiKey.bound_tenant_ids); a bound key publishes only their tenant events.

    Raises InvalidEvent (unknown or reserved type, subtype not in the type's
    catalogue entry, unknown tenant, a payload that is not a JSON object, a
    field over its length), EventTooLarge (payload over
    WEBHOOK_MAX_PAYLOAD_BYTES once serialised), TenantNotAllowed (a public
    event, or another tenant's, from a key bound to `tenants`; also when its
    idempotency key was used before) or FanOutExceeded (more deliveries than
    WEBHOOK_MAX_FANOUT; inside a caller's transaction the failed statement
    has aborted it).
    """
    return publish_events(publisher=publisher, events=[fields], tenants=tenants)[0]


def publish_events(
    *,
    publisher: Client,
    events: Sequence[dict[str, Any]],
    tenants: Collection[int] | None = None,
) -> list[PublishResult]:
    """Publish several events in one transaction, all or none; one result each,
    in order. Each event is published as by publish_event (same fields, same
    idempotency; a key repeated within the batch is a repeat of its first
    event); the workers are woken once, for all of them, on commit.

    On PostgreSQL the events and all their deliveries are one statement (an
    INSERT … ON CONFLICT DO NOTHING of the events and, in the same CTE, the
    INSERT … SELECT of the deliveries of those inserted), so outside a
    transaction a publish is one round trip, committed when it returns; a
    repeat costs one more, to read the existing event. Event types and
    tenants come from in-process caches (webhooks_project/lookups.py).

    A PublishError names the failing event in `index`; nothing is written then.
    """
    for attempt in range(2):
        drafts = _drafts(publisher, events, tenants)
        new = [draft for draft in drafts if isinstance(draft, _Draft)]
        try:
            created, existing = _write(publisher, new)
            break
        except FanOutExceeded as exc:
            exc.index = next(
                index
                for index, draft in enumerate(drafts)
                if isinstance(draft, _Draft) and draft.event.id == exc.event_id
            )
            raise
        except IntegrityError:
            # A tenant (or type) cached a moment ago was deleted since: look
            # them up afresh, which refuses the event (outside a transaction
            # only: inside one the failed statement has aborted it).
            if attempt or connection.in_atomic_block:
                raise
            event_types.clear()
            tenants.clear()
    results: list[PublishResult] = []
    for draft in drafts:
        if isinstance(draft, int):  # a key repeated within the batch
            first = results[draft]
            result = PublishResult(
                event=first.event, deliveries=first.deliveries, created=False
            )
        elif isinstance(draft, _Known):
            result = PublishResult(
                event=draft.event, deliveries=draft.deliveries, created=False
            )
        elif draft.event.id in created:
            counts = created[draft.event.id]
            draft.event._state.adding = False
            draft.event._state.db = connection.alias
            result = PublishResult(
                event=draft.event, deliveries=counts.total, created=True, due=counts.due
            )
        else:  # published before under its key (also by a racing publish)
            event, deliveries = existing[draft.event.idempotency_key]
            result = PublishResult(event=event, deliveries=deliveries, created=False)
        results.append(result)
    if created:
        transaction.on_commit(partial(metrics.events_published.inc, len(created)))
    due = sum(result.due for result in results)
    if due:
        # At once outside a transaction: the statement has committed.
        transaction.on_commit(lambda: wake_workers(due_count=due))
    return results


@dataclass(frozen=True)
class _Draft:
    """A checked, unsaved event and its payload serialised as JSON."""

    event: Event
    payload_json: str


@dataclass(frozen=True)
class _Known:
    """An event published before under the idempotency key of an invalid one."""

    event: Event
    deliveries: int


def _indexed(index: int, check: Callable[..., Any], *args: Any, **kwargs: Any):
    """check(*args, **kwargs), its PublishError marked with the event's index."""
    try:
        return check(*args, **kwargs)
    except PublishError as exc:
        exc.index = index
        raise


def _drafts(
    publisher: Client,
    events: Sequence[dict[str, Any]],
    tenants: Collection[int] | None,
) -> list["_Draft | _Known | int"]:
    """One _Draft per event, or the index of the earlier event of the batch
    with the same idempotency key, or (_Known) the event already published
    under the key of an invalid one. Raises PublishError (with `index`)."""
    for index, fields in enumerate(events):
        key = fields.get("idempotency_key")
        if key is not None:
            _indexed(index, _check_text, "id", key)
    now = timezone.now()
    drafts: list[_Draft | _Known | int] = []
    first_of: dict[str, int] = {}
    for index, fields in enumerate(events):
        key = fields.get("idempotency_key")
        if key is not None and key in first_of:
            drafts.append(first_of[key])
            continue
        try:
            drafts.append(
                _indexed(
                    index, _new_event, publisher, now=now, allowed=tenants, **fields
                )
            )
        except TenantNotAllowed:
            raise  # not even a repeat: the key may not name that tenant
        except PublishError:
            # A repeat is a repeat whatever its body (the publisher retrying
            # with other fields): only a key never used makes the error stand.
            known = published_under(publisher=publisher, keys=[key]) if key else {}
            if key not in known:
                raise
            drafts.append(_Known(*known[key]))
        if key is not None:
            first_of[key] = index
    return drafts


def _write(
    publisher: Client, drafts: Sequence[_Draft]
) -> tuple[dict[UUID, CreatedDeliveries], dict[str, tuple[Event, int]]]:
    """Insert the events not yet published under their keys, and their
    deliveries. Returns the counts of each event inserted (by id) and the
    events that were already there (by key, with their delivery counts)."""
    if not drafts:
        return {}, {}
    if connection.vendor == "postgresql":
        return _write_postgresql(publisher, drafts)
    return _write_portable(publisher, drafts)


def _routes(drafts: Sequence[_Draft]) -> list[list[Event]]:
    """The events grouped by what routes them: (tenant, type, subtype)."""
    routes: dict[tuple, list[Event]] = defaultdict(list)
    for draft in drafts:
        event = draft.event
        routes[(event.tenant_id, event.type, event.subtype)].append(event)
    return list(routes.values())


_EVENTS = f'"{Event._meta.db_table}"'
_SUBSCRIPTIONS = f'"{Subscription._meta.db_table}"'
_EVENT_COLUMNS = (
    "id",
    "publisher_id",
    "idempotency_key",
    "tenant_id",
    "type",
    "subtype",
    "resource_id",
    "resource_url",
    "user_id",
    "payload",
    "occurred_at",
    "created_at",
)
_EVENT_ROW = f"({', '.join(['%s'] * len(_EVENT_COLUMNS))})"


def _write_postgresql(
    publisher: Client, drafts: Sequence[_Draft]
) -> tuple[dict[UUID, CreatedDeliveries], dict[str, tuple[Event, int]]]:
    params: list[Any] = []
    for draft in drafts:
        e = draft.event
        params += [
            e.id,
            e.publisher_id,
            e.idempotency_key,
            e.tenant_id,
            e.type,
            e.subtype,
            e.resource_id,
            e.resource_url,
            e.user_id,
            draft.payload_json,
            e.occurred_at,
            e.created_at,
        ]
    insert_events = (
        f"INSERT INTO {_EVENTS} ({', '.join(_EVENT_COLUMNS)}) "
        f"VALUES {', '.join([_EVENT_ROW] * len(drafts))} "
        # The arbiter is event_unique_idempotency_key (a partial unique index):
        # a key already used, or being used by a transaction not yet committed
        # (waited for), inserts nothing, and so no deliveries.
        "ON CONFLICT (publisher_id, idempotency_key) "
        "WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id, resource_id"
    )
    ctes = [f"new_events AS ({insert_events})"]
    inserts: list[str] = []  # the CTEs that insert deliveries
    routes = _routes(drafts)
    for group in routes:
        condition = routing_condition(
            tenant_id=group[0].tenant_id,
            type=group[0].type,
            subtype=group[0].subtype,
            resource_ids=[event.resource_id for event in group],
            published_at=group[0].created_at,
        )
        if condition is None:
            continue
        where, where_params = condition
        if len(routes) == 1:
            source, source_params = "new_events e", []
        else:
            source = (
                "(SELECT id, resource_id FROM new_events WHERE id = ANY(%s::uuid[])) e"
            )
            source_params = [[str(event.id) for event in group]]
        insert, insert_params = deliveries_insert_sql(
            events_sql=source,
            events_params=source_params,
            subscriptions_sql=(
                f"SELECT {_SUBSCRIPTIONS}.id, {_SUBSCRIPTIONS}.client_id, "
                f"{_SUBSCRIPTIONS}.status, {_SUBSCRIPTIONS}.tracking_id, "
                f"{_SUBSCRIPTIONS}.delivery_ttl FROM {_SUBSCRIPTIONS} WHERE {where}"
            ),
            subscriptions_params=where_params,
            published_at=group[0].created_at,
            lone=len(group) == 1,
            tenant_event=group[0].tenant_id is not None,
        )
        name = f"d{len(inserts)}"
        ctes.append(f"{name} AS ({insert})")
        inserts.append(name)
        params += insert_params
        resources = sorted({event.resource_id for event in group} - {None})
        if resources and _is_terminal(group[0].type):
            # Seed 003: the trackingId webhooks it reaches end now, in the
            # same statement; their deliveries of it are still sent.
            end, end_params = end_tracking_sql(
                delivered_sql=f"SELECT subscription_id FROM {name}",
                tracking_ids=resources,
                now=group[0].created_at,
            )
            ctes.append(f"{name}_ends AS ({end})")
            params += end_params
    if not inserts:
        counted = "SELECT id, 0, 0 FROM new_events"
    else:
        deliveries = " UNION ALL ".join(
            f"SELECT event_id, due FROM {name}" for name in inserts
        )
        # Counted in SQL: a fan-out to 10,000 returns one row, not 10,000.
        # An event over WEBHOOK_MAX_FANOUT makes the function raise, which
        # rolls the whole statement back: checked with no other round trip.
        counted = (
            "SELECT n.id, webhook_fanout_within(n.id, count(d.event_id), "
            "%s::bigint), count(d.event_id) FILTER (WHERE d.due) "
            f"FROM new_events n LEFT JOIN ({deliveries}) d ON d.event_id = n.id "
            "GROUP BY n.id"
        )
        params.append(settings.WEBHOOK_MAX_FANOUT)
    sql = f"WITH {', '.join(ctes)} {counted}"
    with connection.cursor() as cursor:
        try:
            if len(drafts) == 1:
                # One event: a handful of shapes, each planned once per connection.
                prepared.execute(cursor, sql, params)
            else:
                cursor.execute(sql, params)
        except DatabaseError as exc:
            cause = exc.__cause__
            if getattr(cause, "pgcode", None) != _FANOUT_SQLSTATE:
                raise
            event_id, deliveries = cause.diag.message_detail.split()
            raise FanOutExceeded(UUID(event_id), int(deliveries)) from None
        created = {
            event_id: CreatedDeliveries(total=total, due=due)
            for event_id, total, due in cursor.fetchall()
        }
    events = [draft.event for draft in drafts]
    repeated = [e.idempotency_key for e in events if e.id not in created]
    existing = published_under(publisher=publisher, keys=repeated) if repeated else {}
    if len(existing) != len(repeated):
        # Only a key whose event was deleted in between can get here.
        raise IntegrityError("an idempotency key conflicted with no event")
    return created, existing


def _write_portable(
    publisher: Client, drafts: Sequence[_Draft]
) -> tuple[dict[UUID, CreatedDeliveries], dict[str, tuple[Event, int]]]:
    # SQLite: no INSERT in a CTE, but no race either (a transaction takes the
    # write lock when it begins), so look the keys up first.
    with transaction.atomic():
        keys = [d.event.idempotency_key for d in drafts if d.event.idempotency_key]
        existing = published_under(publisher=publisher, keys=keys) if keys else {}
        new = [d for d in drafts if d.event.idempotency_key not in existing]
        Event.objects.bulk_create([draft.event for draft in new])
        created = {draft.event.id: CreatedDeliveries(total=0, due=0) for draft in new}
        ended: list[UUID] = []
        for group in _routes(new):
            matching = matching_subscriptions(*group)
            if _is_terminal(group[0].type):
                resources = [event.resource_id for event in group if event.resource_id]
                ended += matching.filter(tracking_id__in=resources).values_list(
                    "id", flat=True
                )
            created.update(create_deliveries_for(events=group, subscriptions=matching))
        for event_id, counts in created.items():
            if counts.total > settings.WEBHOOK_MAX_FANOUT:
                raise FanOutExceeded(event_id, counts.total)  # rolls back
        if ended:  # after every route, as PostgreSQL's one statement sees them
            end_tracking_subscriptions(
                subscription_ids=ended, now=drafts[0].event.created_at, active_only=True
            )
    return created, existing


def _event_type(name: str) -> EventType | None:
    return event_types.get(name, lambda: EventType.objects.filter(name=name).first())


def _is_terminal(name: str) -> bool:
    """Whether events of this type end the trackingId webhooks they reach."""
    event_type = _event_type(name)
    return event_type is not None and event_type.terminal


def _tenant(name: str) -> Client | None:
    return tenants.get(name, lambda: Client.objects.filter(name=name).first())


def _new_event(
    publisher: Client,
    *,
    now: datetime,
    allowed: Collection[int] | None,
    type: str,
    payload: dict[str, Any],
    subtype: str | None = None,
    resource_id: str | None = None,
    resource_url: str | None = None,
    user_id: str | None = None,
    tenant: str | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> _Draft:
    """The checked draft of one event's fields (PublishError if not)."""
    for field, value in (
        ("type", type),
        ("subtype", subtype),
        ("resource_id", resource_id),
        ("resource_url", resource_url),
        ("user_id", user_id),
        ("tenant", tenant),
    ):
        if value is not None:
            _check_text(field, value)
    _check_type(_event_type(type), type, subtype)
    payload_json = _check_payload(payload)
    tenant_client = None
    if tenant is not None:
        tenant_client = _tenant(tenant)
        if tenant_client is None:
            raise InvalidEvent("tenant", f"no tenant named {tenant!r}")
    if allowed is not None:
        # docs/security.md, "Publish keys and tenants".
        if tenant_client is None:
            raise TenantNotAllowed(
                "tenant", "this publish key is bound to tenants: name one of them"
            )
        if tenant_client.pk not in allowed:
            raise TenantNotAllowed(
                "tenant", f"this publish key may not publish into tenant {tenant!r}"
            )
    event = Event(
        id=uuid4(),
        publisher=publisher,
        idempotency_key=idempotency_key,
        tenant=tenant_client,
        type=type,
        subtype=subtype,
        resource_id=resource_id,
        resource_url=resource_url,
        user_id=user_id,
        payload=payload,
        occurred_at=occurred_at or now,
        created_at=now,
    )
    return _Draft(event=event, payload_json=payload_json)


# The longest text each field takes (the API's `id` is idempotency_key).
_LIMITS = {
    field: (Client if field == "tenant" else Event)._meta.get_field(name).max_length
    for field, name in (
        ("id", "idempotency_key"),
        ("type", "type"),
        ("subtype", "subtype"),
        ("resource_id", "resource_id"),
        ("resource_url", "resource_url"),
        ("user_id", "user_id"),
        ("tenant", "name"),
    )
}


def _check_text(field: str, value: str) -> None:
    limit = _LIMITS[field]
    if not isinstance(value, str):
        raise InvalidEvent(field, "must be a string")
    if limit is not None and len(value) > limit:
        raise InvalidEvent(field, f"at most {limit} characters")
    # PostgreSQL text cannot hold NUL; the driver would refuse the query.
    if "\x00" in value:
        raise InvalidEvent(field, "may not contain the NUL character")


def _check_type(event_type: EventType | None, type: str, subtype: str | None) -> None:
    if type == RESERVED_TYPE:
        raise InvalidEvent(
            "type", f"{RESERVED_TYPE} is reserved for the webhook test endpoint"
        )
    if event_type is None:
        raise InvalidEvent("type", f"unknown event type {type!r}")
    if subtype is not None and subtype not in (event_type.subtypes or []):
        if event_type.subtypes:
            allowed = ", ".join(event_type.subtypes)
            message = f"{type} has no subtype {subtype!r} (one of: {allowed})"
        else:
            message = f"{type} has no subtypes"
        raise InvalidEvent("subtype", message)


def _check_payload(payload: Any) -> str:
    """The payload as compact JSON (what is stored), once checked."""
    if not isinstance(payload, dict):
        raise InvalidEvent("payload", "must be a JSON object")
    try:
        # allow_nan=False: PostgreSQL's jsonb has no NaN or Infinity.
        serialised = json.dumps(
            payload, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        )
        size = len(serialised.encode("utf-8"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEvent("payload", f"is not serialisable as JSON ({exc})")
    limit = settings.WEBHOOK_MAX_PAYLOAD_BYTES
    if size > limit:
        raise EventTooLarge("payload", f"larger than {limit} bytes as JSON")
    # jsonb cannot store the NUL character, which json.dumps escapes as \u0000
    # (drop escaped backslashes first: "\\u0000" is a backslash and "u0000").
    if "\\u0000" in serialised.replace("\\\\", ""):
        raise InvalidEvent("payload", "may not contain the NUL character (\\u0000)")
    return serialised
