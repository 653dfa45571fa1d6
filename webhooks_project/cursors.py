"""Keyset pagination cursors of the API's lists (deliveries, events): the
(created_at, id) of the last row of a page, opaque to clients."""

import base64
import binascii
from datetime import datetime
from uuid import UUID

from django.utils.dateparse import parse_datetime
from rest_framework import serializers


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """Raises ValueError for anything encode_cursor did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode()
        created, _, row_id = raw.partition("|")
        moment = parse_datetime(created)
        if moment is None or moment.tzinfo is None:
            raise ValueError("no time")
        return moment, UUID(row_id)
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError("not a cursor") from exc


class CursorField(serializers.CharField):
    """A query's `cursor`: the `next` of the previous page, as (created_at, id)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "The `next` of the previous page.")
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> tuple[datetime, UUID]:  # type: ignore[override]
        try:
            return decode_cursor(super().to_internal_value(data))
        except ValueError:
            raise serializers.ValidationError("Not a cursor returned by this API.")
