"""Strict request fields, shared by every API: a value of the wrong type or
an unknown key is a 400, never silently coerced or ignored."""

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers

_FIELD_MESSAGES = {
    "required": "required",
    "null": "may not be null",
    "blank": "may not be blank",
    "invalid": "must be a string",
    "max_length": "at most {max_length} characters",
}


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's CharField would turn 42 into "42"."""

    default_error_messages = _FIELD_MESSAGES

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictListField(serializers.ListField):
    default_error_messages = {
        "required": "required",
        "null": "may not be null",
        "not_a_list": "must be a list",
        "empty": "may not be empty",
        "min_length": "at least {min_length} entries",
        "max_length": "at most {max_length} entries",
    }


class StrictSerializer(serializers.Serializer):
    """An object whose unknown keys are a 400: a misspelt `trackingID` must not
    silently create a webhook for every event of the tenant."""

    default_error_messages = {
        "required": "required",
        "null": "may not be null",
        "invalid": "must be an object",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        unknown: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            unknown = {str(k): ["unknown field"] for k in data if k not in self.fields}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                exc.detail.update(unknown)
            raise
        if unknown:
            raise serializers.ValidationError(unknown)
        return value
