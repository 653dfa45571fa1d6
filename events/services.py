"""Publishing: an event and its fan-out, written in one transaction."""

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.query import EmptyQuerySet
from django.utils import timezone

from delivery.services import (
    CreatedDeliveries,
    create_deliveries_for,
    wake_workers,
)
from events.models import Event, EventType
from events.selectors import (
    count_deliveries,
    matching_subscriptions,
)
from subscriptions.models import Client

# Created only by the test endpoint (POST /webhooks/{id}/test), never published.
RESERVED_TYPE = "TEST"


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


@dataclass(frozen=True)
class PublishResult:
    event: Event
    # Created by this call, or (created=False) the existing event's count.
    deliveries: int
    created: bool
    # Deliveries created pending and due now (held ones are not).
    due: int = 0


def publish_event(*, publisher: Client, **fields: Any) -> PublishResult:
    """Publish an event: insert it and one delivery per matching subscription.

    `fields` are those of one event: type, payload, and optionally subtype,
    resource_id, resource_url, user_id, tenant, occurred_at, idempotency_key.

    The event and its deliveries are written in one transaction (joining the
    caller's, if any); workers are woken when it commits, and a broker that is
    down does not fail the publish (dispatch_due finds the rows).

    Idempotent per (publisher, idempotency_key): when the publisher already
    published under that key, nothing is written and the existing event is
    returned with created=False, also when two calls race.

    Raises InvalidEvent (unknown or reserved type, subtype not in the type's
    catalogue entry, unknown tenant, a payload that is not a JSON object, a
    field over its length) or EventTooLarge (payload over
    WEBHOOK_MAX_PAYLOAD_BYTES once serialised).
    """
    return publish_events(publisher=publisher, events=[fields])[0]


def publish_events(
    *, publisher: Client, events: Sequence[dict[str, Any]]
) -> list[PublishResult]:
    """Publish several events in one transaction, all or none; one result each,
    in order. Each event is published as by publish_event (same fields, same
    idempotency; a key repeated within the batch is a repeat of its first
    event); the workers are woken once, for all of them, on commit.

    A PublishError names the failing event in `index`; nothing is written then.
    """
    lookups = _Lookups()
    # Losing a race on an idempotency key to another publisher (its commit
    # makes this insert fail) rolls back a savepoint and publishes again, when
    # that key is a repeat. Each retry has one more repeat, so this ends.
    tries = 1 + sum(fields.get("idempotency_key") is not None for fields in events)
    with transaction.atomic():
        for attempt in range(tries):
            try:
                with transaction.atomic():
                    results = _publish_together(publisher, lookups, events)
                break
            except IntegrityError:
                if attempt == tries - 1:
                    raise
        due = sum(result.due for result in results)
        if due:
            transaction.on_commit(lambda: wake_workers(due_count=due))
    return results


def _indexed(index: int, publish: Callable[..., Any], *args: Any, **kwargs: Any):
    """publish(*args, **kwargs), its PublishError marked with the event's index."""
    try:
        return publish(*args, **kwargs)
    except PublishError as exc:
        exc.index = index
        raise


def _publish_together(
    publisher: Client, lookups: "_Lookups", events: Sequence[dict[str, Any]]
) -> list[PublishResult]:
    # One INSERT for the events, one INSERT … SELECT of deliveries per distinct
    # (tenant, type, subtype): a batch of 1,000 events of one type costs about
    # five statements, not 4,000.
    keys = [(n, f.get("idempotency_key")) for n, f in enumerate(events)]
    keys = [(n, key) for n, key in keys if key is not None]
    for index, key in keys:
        _indexed(index, _check_text, "id", key)
    existing = {}
    if keys:
        earlier = Event.objects.filter(
            publisher=publisher, idempotency_key__in={key for _, key in keys}
        )
        existing = {event.idempotency_key: event for event in earlier}

    now = timezone.now()
    results: list[PublishResult | None] = [None] * len(events)
    new: list[tuple[int, Event]] = []
    first_of: dict[str, int] = {}  # key -> index of its first event in the batch
    for index, fields in enumerate(events):
        key = fields.get("idempotency_key")
        if key in existing:
            results[index] = _repeat_of(existing[key])
        elif key is None or key not in first_of:
            event = _indexed(index, _new_event, publisher, lookups, now=now, **fields)
            new.append((index, event))
            if key is not None:
                first_of[key] = index
    Event.objects.bulk_create([event for _, event in new])

    routes: dict[tuple, list[Event]] = defaultdict(list)
    for _, event in new:
        routes[(event.tenant_id, event.type, event.subtype)].append(event)
    created: dict[Any, CreatedDeliveries] = {}
    for group in routes.values():
        subscriptions = matching_subscriptions(*group)
        if not isinstance(subscriptions, EmptyQuerySet):
            created.update(
                create_deliveries_for(events=group, subscriptions=subscriptions)
            )
    for index, event in new:
        counts = created.get(event.id, CreatedDeliveries(total=0, due=0))
        results[index] = PublishResult(
            event=event, deliveries=counts.total, created=True, due=counts.due
        )
    for index, fields in enumerate(events):
        if results[index] is None:  # a key repeated within the batch
            first = results[first_of[fields["idempotency_key"]]]
            results[index] = PublishResult(
                event=first.event, deliveries=first.deliveries, created=False
            )
    return results


class _Lookups:
    """The catalogue rows and tenants one call looked up, so a batch asks once."""

    def __init__(self) -> None:
        self.types: dict[str, EventType | None] = {}
        self.tenants: dict[str, Client | None] = {}

    def event_type(self, name: str) -> EventType | None:
        if name not in self.types:
            self.types[name] = EventType.objects.filter(name=name).first()
        return self.types[name]

    def tenant(self, name: str) -> Client | None:
        if name not in self.tenants:
            self.tenants[name] = Client.objects.filter(name=name).first()
        return self.tenants[name]


def _new_event(
    publisher: Client,
    lookups: _Lookups,
    *,
    now: datetime,
    type: str,
    payload: dict[str, Any],
    subtype: str | None = None,
    resource_id: str | None = None,
    resource_url: str | None = None,
    user_id: str | None = None,
    tenant: str | None = None,
    occurred_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Event:
    """The checked, unsaved Event of one event's fields (PublishError if not)."""
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
    _check_type(lookups.event_type(type), type, subtype)
    _check_payload(payload)
    tenant_client = None
    if tenant is not None:
        tenant_client = lookups.tenant(tenant)
        if tenant_client is None:
            raise InvalidEvent("tenant", f"no tenant named {tenant!r}")
    return Event(
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


def _repeat_of(event: Event) -> PublishResult:
    return PublishResult(
        event=event, deliveries=count_deliveries(event=event), created=False
    )


def _check_text(field: str, value: str) -> None:
    model = Client if field == "tenant" else Event
    model_field = {"id": "idempotency_key", "tenant": "name"}.get(field, field)
    limit = model._meta.get_field(model_field).max_length
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


def _check_payload(payload: Any) -> None:
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
