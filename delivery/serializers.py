"""Shapes of the delivery endpoints (docs/api.md, "Deliveries")."""

import base64
import binascii
from datetime import datetime
from typing import Any
from uuid import UUID

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from delivery.models import Attempt, Delivery

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


def encode_cursor(delivery: Delivery) -> str:
    """Opaque to clients: the (created_at, id) of the last row of a page."""
    raw = f"{delivery.created_at.isoformat()}|{delivery.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Raises ValueError for anything encode_cursor did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
        created, _, delivery_id = raw.partition("|")
        moment = parse_datetime(created)
        if moment is None or moment.tzinfo is None:
            raise ValueError("no time")
        return moment, UUID(delivery_id)
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError("not a cursor") from exc


class DeliveryListQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE, default=DEFAULT_PAGE
    )
    cursor = serializers.CharField(
        required=False, help_text="The `next` of the previous page."
    )

    def validate_cursor(self, value: str) -> tuple[datetime, UUID]:
        try:
            return decode_cursor(value)
        except ValueError:
            raise serializers.ValidationError("Not a cursor returned by this API.")
