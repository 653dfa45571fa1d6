"""Input and output shapes of the events API (API.md, "Events")."""

from typing import Any

from django.core.validators import URLValidator
from rest_framework import serializers

from events.models import Event
from subscriptions.models import Client

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _max_length(model: type, field: str) -> int:
    return model._meta.get_field(field).max_length


class PublishEventSerializer(serializers.Serializer):
    """The body of POST /api/v1/events.

    The Idempotency-Key header, if any, comes in through the context
    (`idempotency_header`) so that it is checked against `id` here.
    """

    id = serializers.CharField(
        max_length=_max_length(Event, "idempotency_key"),
        required=False,
        allow_null=True,
        help_text="Your id for the event; publishing the same id again is a no-op.",
    )
    type = serializers.CharField(max_length=_max_length(Event, "type"))
    subtype = serializers.CharField(
        max_length=_max_length(Event, "subtype"), required=False, allow_null=True
    )
    resource_id = serializers.CharField(
        max_length=_max_length(Event, "resource_id"), required=False, allow_null=True
    )
    resource_url = serializers.CharField(
        max_length=_max_length(Event, "resource_url"),
        required=False,
        allow_null=True,
        validators=[
            URLValidator(
                schemes=["http", "https"], message="must be an http or https URL"
            )
        ],
        help_text="Where the receiver fetches the full resource.",
    )
    user_id = serializers.CharField(
        max_length=_max_length(Event, "user_id"), required=False, allow_null=True
    )
    tenant = serializers.CharField(
        max_length=_max_length(Client, "name"),
        required=False,
        allow_null=True,
        help_text="A client name: a tenant event. Without it the event is public.",
    )
    payload = serializers.DictField(
        required=False,
        default=dict,
        error_messages={"not_a_dict": "must be a JSON object"},
        help_text="A JSON object; keep it small.",
    )
    occurred_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text="ISO 8601; defaults to now."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        header = self.context.get("idempotency_header")
        body_id = attrs.get("id")
        if header is not None:
            header_field = serializers.CharField(
                max_length=_max_length(Event, "idempotency_key")
            )
            try:
                header = header_field.run_validation(header)
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


class EventLogSerializer(serializers.Serializer):
    """GET /api/v1/events/{id}: an EventLog (the event and visible deliveries)."""

    id = serializers.UUIDField(source="event.id")
    type = serializers.CharField(source="event.type")
    subtype = serializers.CharField(source="event.subtype", allow_null=True)
    resource_id = serializers.CharField(source="event.resource_id", allow_null=True)
    resource_url = serializers.CharField(source="event.resource_url", allow_null=True)
    user_id = serializers.CharField(source="event.user_id", allow_null=True)
    tenant = serializers.SlugRelatedField(
        source="event.tenant",
        slug_field="name",
        read_only=True,
        allow_null=True,
        help_text="The tenant's name; null for a public event.",
    )
    payload = serializers.DictField(source="event.payload")
    occurred_at = serializers.DateTimeField(source="event.occurred_at")
    created = serializers.DateTimeField(source="event.created_at")
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


class ErrorEnvelopeSerializer(serializers.Serializer):
    """The body of every error (API.md, "Conventions")."""

    uuid = serializers.CharField(help_text="Identifies the request in the logs.")
    status = serializers.CharField(help_text="The HTTP status, as a string.")
    reason = serializers.CharField(help_text="One human sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field paths to messages.",
    )
