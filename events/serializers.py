"""Input and output shapes of the events API (docs/api.md, "Events")."""

from typing import Any

from django.core.validators import ProhibitNullCharactersValidator, URLValidator
from rest_framework import serializers

from events.models import Event
from events.selectors import EVENT_LIST_STATUSES
from subscriptions.models import Client
from webhooks_project.cursors import CursorField
from webhooks_project.serializers import StrictListField, StrictSerializer

IDEMPOTENCY_HEADER = "Idempotency-Key"
# The most events one POST /batch/api/v1/events takes.
BATCH_MAX = 1000
# GET /api/v1/events: page sizes, as GET /api/v1/webhooks/{id}/deliveries.
LIST_MAX = 1000
LIST_DEFAULT = 100


def _max_length(model: type, field: str) -> int:
    return model._meta.get_field(field).max_length


class TextField(serializers.CharField):
    """A string, and only a string: DRF's CharField would turn 42 into "42"."""

    default_error_messages = {
        "required": "required",
        "null": "may not be null",
        "blank": "may not be blank",
        "invalid": "must be a string",
        "max_length": "at most {max_length} characters",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [
            ProhibitNullCharactersValidator("may not contain the NUL character")
            if isinstance(validator, ProhibitNullCharactersValidator)
            else validator
            for validator in self.validators
        ]

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def _optional_text(model: type, field: str, **kwargs: Any) -> TextField:
    return TextField(
        max_length=_max_length(model, field), required=False, allow_null=True, **kwargs
    )


class PublishEventSerializer(serializers.Serializer):
    """The body of POST /api/v1/events.

    Unknown keys are a 400: a misspelt `tenant` would otherwise publish a
    public event. The Idempotency-Key header, if any, comes in through the
    context (`idempotency_header`) so that it is checked against `id` here.
    """

    default_error_messages = {"invalid": "the body must be a JSON object"}

    id = _optional_text(
        Event,
        "idempotency_key",
        help_text="Your id for the event; publishing the same id again is a no-op.",
    )
    type = TextField(max_length=_max_length(Event, "type"))
    subtype = _optional_text(Event, "subtype")
    resource_id = _optional_text(Event, "resource_id")
    resource_url = _optional_text(
        Event,
        "resource_url",
        validators=[
            URLValidator(
                schemes=["http", "https"], message="must be an http or https URL"
            )
        ],
        help_text="Where the receiver fetches the full resource.",
    )
    user_id = _optional_text(Event, "user_id")
    tenant = _optional_text(
        Client,
        "name",
        help_text="A client name: a tenant event. Without it the event is public.",
    )
    payload = serializers.DictField(
        required=False,
        default=dict,
        error_messages={
            "not_a_dict": "must be a JSON object",
            "null": "may not be null",
        },
        help_text="A JSON object; keep it small.",
    )
    occurred_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        error_messages={"invalid": "must be an ISO 8601 time (2026-11-22T10:00:00Z)"},
        help_text="ISO 8601; defaults to now.",
    )

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError(
                    {key: ["unknown field"] for key in unknown}
                )
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return with_idempotency_header(attrs, self.context.get("idempotency_header"))


_HEADER_FIELD = TextField(max_length=_max_length(Event, "idempotency_key"))


def with_idempotency_header(
    attrs: dict[str, Any], header: str | None
) -> dict[str, Any]:
    """A validated event body with its `idempotency_key`: the body's `id`, or
    else the Idempotency-Key header (checked like `id`; both: they must match).
    Raises ValidationError naming the header."""
    body_id = attrs.get("id")
    if header is not None:
        try:
            header = _HEADER_FIELD.run_validation(header)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({IDEMPOTENCY_HEADER: exc.detail})
        if body_id is not None and body_id != header:
            raise serializers.ValidationError(
                {IDEMPOTENCY_HEADER: ["differs from the id in the body"]}
            )
    attrs["idempotency_key"] = body_id if body_id is not None else header
    return attrs


class PublishedEventSerializer(serializers.Serializer):
    id = serializers.UUIDField(help_text="The event id receivers deduplicate on.")
    deliveries = serializers.IntegerField(
        help_text="Deliveries created (for a repeat: those of the existing event)."
    )


class PublishEventBatchSerializer(StrictSerializer):
    """The body of POST /batch/api/v1/events: `{"events": [event, …]}`, each
    event as the body of POST /api/v1/events (its `id` for idempotency)."""

    default_error_messages = {"invalid": "the body must be a JSON object"}

    events = StrictListField(
        child=PublishEventSerializer(),
        min_length=1,
        max_length=BATCH_MAX,
        allow_empty=False,
        help_text=f"1–{BATCH_MAX} events, published all or none.",
    )


class PublishedBatchItemSerializer(PublishedEventSerializer):
    created = serializers.BooleanField(
        help_text="false: already published under this id; nothing was created."
    )


class PublishedBatchSerializer(serializers.Serializer):
    events = PublishedBatchItemSerializer(many=True, help_text="In request order.")
    deliveries = serializers.IntegerField(help_text="Deliveries created in all.")


class EventDeliverySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    webhook_id = serializers.UUIDField(
        source="subscription_id", allow_null=True, help_text="null once deleted."
    )
    status = serializers.CharField()
    attempts_count = serializers.IntegerField()
    last_status_code = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField(allow_null=True)

    def to_representation(self, instance: dict[str, Any]) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["last_error"] = data["last_error"] or None
        return data


class _EventFields(serializers.Serializer):
    """An event as GET /api/v1/events/{id} shows it, from an object whose
    `event` is the Event (an EventLog or an EventSummary)."""

    id = serializers.UUIDField(source="event.id")
    type = serializers.CharField(source="event.type")
    subtype = serializers.CharField(source="event.subtype", allow_null=True)
    resource_id = serializers.CharField(source="event.resource_id", allow_null=True)
    resource_url = serializers.CharField(source="event.resource_url", allow_null=True)
    user_id = serializers.CharField(source="event.user_id", allow_null=True)
    tenant = serializers.SerializerMethodField(
        help_text="The tenant's name; null for a public event."
    )
    payload = serializers.DictField(source="event.payload")
    occurred_at = serializers.DateTimeField(source="event.occurred_at")
    created = serializers.DateTimeField(source="event.created_at")

    def get_tenant(self, item: Any) -> str | None:
        tenant = item.event.tenant
        return tenant.name if tenant is not None else None


class EventLogSerializer(_EventFields):
    """GET /api/v1/events/{id}: an EventLog (the event and visible deliveries)."""

    deliveries = EventDeliverySerializer(many=True)


class EventTypeSerializer(serializers.Serializer):
    name = serializers.CharField()
    subtypes = serializers.ListField(
        child=serializers.CharField(),
        help_text="Subscribe to one with TYPE:SUBTYPE.",
    )
    terminal = serializers.BooleanField(
        help_text="Once delivered, ends trackingId webhooks on its resource."
    )
    description = serializers.CharField()


class DeliveryCountsSerializer(serializers.Serializer):
    """Keys as events.selectors SUMMARY_STATUSES, and their sum."""

    total = serializers.IntegerField()
    pending = serializers.IntegerField()
    held = serializers.IntegerField(help_text="Pending, its webhook paused.")
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    expired = serializers.IntegerField()
    cancelled = serializers.IntegerField(help_text="Its webhook was deleted.")


class EventSummarySerializer(_EventFields):
    """One event of GET /api/v1/events (an EventSummary)."""

    deliveries = DeliveryCountsSerializer(
        help_text="The deliveries of the event this key sees, counted by status."
    )


class EventPageSerializer(serializers.Serializer):
    results = EventSummarySerializer(many=True)
    next = serializers.CharField(
        allow_null=True,
        help_text="Pass as `cursor` for the next page; null at the end.",
    )


_TIME_MESSAGES = {"invalid": "must be an ISO 8601 time (2026-11-22T10:00:00Z)"}


class EventListQuerySerializer(serializers.Serializer):
    """The query of GET /api/v1/events; a bad value is a 400 naming it."""

    type = serializers.CharField(required=False, help_text="Events of this type.")
    since = serializers.DateTimeField(
        required=False,
        error_messages=_TIME_MESSAGES,
        help_text="Published at or after this time (ISO 8601).",
    )
    until = serializers.DateTimeField(
        required=False,
        error_messages=_TIME_MESSAGES,
        help_text="Published before this time (ISO 8601).",
    )
    resource_id = serializers.CharField(required=False)
    status = serializers.ChoiceField(
        choices=sorted(EVENT_LIST_STATUSES),
        required=False,
        error_messages={
            "invalid_choice": "must be one of " + ", ".join(sorted(EVENT_LIST_STATUSES))
        },
        help_text=(
            "Events with at least one of your deliveries in this status "
            "(pending includes held)."
        ),
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=LIST_MAX, default=LIST_DEFAULT
    )
    cursor = CursorField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and since > until:
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs
