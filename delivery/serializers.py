"""Shapes of the delivery endpoints (docs/api.md, "Deliveries")."""

from typing import Any

from rest_framework import serializers

from delivery.models import Attempt, Delivery
from delivery.ops.replay import (
    WEBHOOK_REPLAY_DEFAULT_STATUSES,
    WEBHOOK_REPLAY_STATUSES,
)
from delivery.services import (
    BULK_RETRY_DEFAULT_STATUSES,
    BULK_RETRY_MAX,
    BULK_RETRY_STATUSES,
)
from webhooks_project.cursors import CursorField
from webhooks_project.serializers import StrictListField, StrictSerializer

MAX_PAGE = 1000
DEFAULT_PAGE = 100


class AttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = list(Attempt.RECORDED)


class DeliverySerializer(serializers.ModelSerializer):
    event_id = serializers.UUIDField(read_only=True)
    webhook_id = serializers.UUIDField(
        source="subscription_id",
        read_only=True,
        allow_null=True,
        help_text="null once the webhook was deleted",
    )
    created = serializers.DateTimeField(source="created_at", read_only=True)
    attempts = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "event_id",
            "webhook_id",
            "kind",
            "status",
            "attempts_count",
            "next_attempt_at",
            "expires_at",
            "created",
            "delivered_at",
            "attempts",
        ]

    def to_representation(self, instance: Delivery) -> dict[str, Any]:
        data = super().to_representation(instance)
        # Only a pending delivery has a next attempt.
        if instance.status != Delivery.Status.PENDING:
            data["next_attempt_at"] = None
        return data


class DeliveryPageSerializer(serializers.Serializer):
    results = DeliverySerializer(many=True)
    next = serializers.CharField(
        allow_null=True,
        help_text="Pass as `cursor` for the next page; null at the end.",
    )


class TestDeliverySerializer(serializers.Serializer):
    delivery_id = serializers.UUIDField()


class DeliveryListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)
    # Our event UUID or the publisher's own event id (its idempotency key).
    event_id = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Only the deliveries of this event: our UUID, or the "
        "publisher's own event `id`.",
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE, default=DEFAULT_PAGE
    )
    cursor = CursorField()


_TIME_MESSAGES = {
    "invalid": "must be an ISO 8601 time (2026-11-22T10:00:00Z)",
    "required": "required",
    "null": "may not be null",
}


def _statuses(choices: tuple[str, ...], default: tuple[str, ...]) -> StrictListField:
    return StrictListField(
        child=serializers.ChoiceField(
            choices=list(choices),
            error_messages={"invalid_choice": "must be one of " + ", ".join(choices)},
        ),
        required=False,
        allow_empty=False,
        default=list(default),
        help_text=f"Default {', '.join(default)}; any of {', '.join(choices)}.",
    )


class _RangeSerializer(StrictSerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        since, until = attrs.get("since"), attrs.get("until")
        if since is not None and until is not None and since > until:
            raise serializers.ValidationError({"until": ["must not be before since"]})
        return attrs


class WebhookReplaySerializer(_RangeSerializer):
    """The body of POST /api/v1/webhooks/{id}/replay."""

    since = serializers.DateTimeField(
        error_messages=_TIME_MESSAGES,
        help_text="Deliveries created at or after this time (ISO 8601).",
    )
    until = serializers.DateTimeField(
        required=False,
        allow_null=True,
        error_messages=_TIME_MESSAGES,
        help_text="Deliveries created before this time; default now.",
    )
    status = _statuses(WEBHOOK_REPLAY_STATUSES, WEBHOOK_REPLAY_DEFAULT_STATUSES)


class WebhookReplayResultSerializer(serializers.Serializer):
    replayed = serializers.IntegerField(help_text="New deliveries made, due now.")
    skipped = serializers.IntegerField(
        help_text="Selected but not replayed (already replayed, webhook paused …)."
    )


class BulkRetrySerializer(_RangeSerializer):
    """The body of POST /api/v1/deliveries/bulk-retry: `ids`, or a filter
    (`webhook` and `since`, optionally `until`); `status` with either."""

    ids = StrictListField(
        child=serializers.UUIDField(error_messages={"invalid": "must be a UUID"}),
        required=False,
        allow_empty=False,
        max_length=BULK_RETRY_MAX,
        help_text=f"Delivery ids, at most {BULK_RETRY_MAX}.",
    )
    webhook = serializers.UUIDField(
        required=False,
        error_messages={"invalid": "must be a UUID"},
        help_text="A webhook of yours: retry its deliveries in [since, until).",
    )
    since = serializers.DateTimeField(required=False, error_messages=_TIME_MESSAGES)
    until = serializers.DateTimeField(
        required=False, allow_null=True, error_messages=_TIME_MESSAGES
    )
    status = _statuses(BULK_RETRY_STATUSES, BULK_RETRY_DEFAULT_STATUSES)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if "ids" in attrs:
            extra = [f for f in ("webhook", "since", "until") if f in attrs]
            if extra:
                raise serializers.ValidationError(
                    {f: ["not taken with ids"] for f in extra}
                )
        elif "webhook" not in attrs:
            raise serializers.ValidationError(
                {"ids": ["give ids, or webhook and since"]}
            )
        elif attrs.get("since") is None:
            raise serializers.ValidationError({"since": ["required with webhook"]})
        return attrs


class BulkRetryResultSerializer(serializers.Serializer):
    retried = serializers.IntegerField(help_text="Deliveries made due again now.")
    skipped = serializers.IntegerField(
        help_text="Not retried: unknown or not yours, another status, webhook "
        "paused or deleted."
    )
