"""The webhook API's request parsing and the webhook object (docs/api.md, "Webhooks").

Request serializers only validate and normalise: they never write. Every
message is phrased so it can be shown to the client without echoing the
value it is about (header values and client secrets are write-only).
"""

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from delivery.sender.ssrf import BlockedDestination, validate_destination
from subscriptions import selectors
from subscriptions.headers import is_reserved
from subscriptions.models import Subscription
from webhooks_project import conf
from webhooks_project.cursors import CursorField
from webhooks_project.serializers import (
    StrictCharField,
    StrictListField,
    StrictSerializer,
)

URL_MAX = 250
CONTENT_TYPE_MAX = 40
HEADERS_MAX = 1024
TRACKING_ID_MAX = 128
EVENT_GROUPS_MAX = 50
BATCH_MAX = 1000
LIST_LIMIT_DEFAULT = 10_000
LIST_LIMIT_MAX = 150_000

# RFC 9110 field-name: a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# The headers a profile sets on every request (delivery/pipeline/outbound.py).
_PROFILE_HEADERS = {
    Subscription.Profile.RAAS: frozenset({"x-raas-webhook-signature", "x-raas-event"}),
}
_PROFILES = ", ".join(Subscription.Profile.values)
# RFC 9110 media-type: type "/" subtype *( OWS ";" OWS parameter ), a
# parameter's value a token or a quoted-string (whose obs-text is latin-1).
_QUOTED = r'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_MEDIA_TYPE = re.compile(
    rf"{_TOKEN.pattern}/{_TOKEN.pattern}"
    rf"(?:[ \t]*;[ \t]*{_TOKEN.pattern}=(?:{_TOKEN.pattern}|{_QUOTED}))*"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DELIVERY_TTL_MIN = timedelta(seconds=1)
_DURATION_UNITS = (
    ("d", timedelta(days=1)),
    ("h", timedelta(hours=1)),
    ("m", timedelta(minutes=1)),
    ("s", timedelta(seconds=1)),
    ("ms", timedelta(milliseconds=1)),
)


def format_duration(value: timedelta) -> str:
    """`7d`, `36h`, `90m`, `1500ms`: the largest unit that divides it, so it
    reads back through conf.parse_duration unchanged."""
    for suffix, unit in _DURATION_UNITS:
        if value % unit == timedelta(0):
            return f"{value // unit}{suffix}"
    return f"{value.total_seconds()}s"


def _check_http_url(value: str) -> None:
    if _CONTROL.search(value) or " " in value:
        raise serializers.ValidationError("must not contain spaces or control chars")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise serializers.ValidationError("must be a valid http or https URL")
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError("must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        # They would be returned in `configuration.url`; secrets go in headers.
        raise serializers.ValidationError(
            "must not contain credentials; use headers or oauth2"
        )


def _check_destination(value: str) -> None:
    try:
        validate_destination(value)
    except BlockedDestination as exc:
        raise serializers.ValidationError(str(exc) or "destination not allowed")


class HeaderSerializer(StrictSerializer):
    """A custom request header; its value is write-only."""

    key = StrictCharField(max_length=HEADERS_MAX, trim_whitespace=False)
    value = StrictCharField(
        max_length=HEADERS_MAX, allow_blank=True, trim_whitespace=False
    )

    def validate_key(self, key: str) -> str:
        if not _TOKEN.fullmatch(key):
            raise serializers.ValidationError("not a valid header name")
        if is_reserved(key):
            # A header name is not secret (the webhook object shows it).
            raise serializers.ValidationError(f"{key}: reserved header name")
        return key

    def validate_value(self, value: str) -> str:
        if _CONTROL.search(value.replace("\t", "")):
            raise serializers.ValidationError("must not contain control characters")
        if value[:1].isspace():
            # HTTP clients refuse such a value; every attempt would fail.
            raise serializers.ValidationError("must not start with whitespace")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            # HTTP sends header values as ISO-8859-1; every attempt would fail.
            raise serializers.ValidationError("must be ISO-8859-1 (latin-1) text")
        return value


class OAuth2Serializer(StrictSerializer):
    """OAuth2 client credentials; client_secret is write-only."""

    token_url = StrictCharField(max_length=URL_MAX)
    client_id = StrictCharField(max_length=255)
    client_secret = StrictCharField(
        max_length=1024, write_only=True, trim_whitespace=False
    )
    audience = StrictCharField(
        max_length=255, required=False, allow_blank=True, allow_null=True
    )
    scope = StrictCharField(
        max_length=255, required=False, allow_blank=True, allow_null=True
    )

    def validate_token_url(self, value: str) -> str:
        _check_http_url(value)
        _check_destination(value)
        return value


class ConfigurationSerializer(StrictSerializer):
    """Where and how to deliver. Immutable once created."""

    url = StrictCharField(max_length=URL_MAX)
    content_type = StrictCharField(max_length=CONTENT_TYPE_MAX, required=False)
    # Not HeaderSerializer(many=True, allow_null=True): that lets null items in.
    headers = serializers.ListSerializer(
        child=HeaderSerializer(), required=False, allow_null=True
    )
    oauth2 = OAuth2Serializer(required=False, allow_null=True)
    profile = serializers.ChoiceField(
        choices=Subscription.Profile.choices,
        required=False,
        default=Subscription.Profile.STANDARD,
        help_text="The receiver's wire format (docs/api.md, Profiles).",
        error_messages={
            "invalid_choice": f"must be one of {_PROFILES}",
            "null": "may not be null",
        },
    )
    delivery_ttl = StrictCharField(
        max_length=32,
        required=False,
        help_text=(
            "How long each delivery is retried: a duration such as 1h or 7d, at "
            "most WEBHOOK_MAX_DELIVERY_TTL. Default WEBHOOK_DELIVERY_TTL "
            "(capillary: 7d)."
        ),
    )
    rate_limit = StrictCharField(
        max_length=16,
        required=False,
        help_text=(
            "The most requests this webhook gets, across all workers: N/s or N/m, "
            "between 1/m and 1000/s, evenly spaced. Default: no limit."
        ),
    )

    def validate_url(self, value: str) -> str:
        _check_http_url(value)
        _check_destination(value)
        return value

    def validate_rate_limit(self, value: str) -> str:
        try:
            return str(conf.parse_rate(value))
        except ValueError:
            raise serializers.ValidationError(
                "must be a rate such as 10/s or 600/m, between 1/m and "
                f"{conf.RATE_MAX_PER_SECOND}/s"
            )

    def validate_delivery_ttl(self, value: str) -> timedelta:
        try:
            ttl = conf.parse_duration(value)
        except ValueError:
            raise serializers.ValidationError(
                "must be a duration such as 30m, 24h or 7d"
            )
        if ttl < DELIVERY_TTL_MIN:
            raise serializers.ValidationError(
                f"at least {format_duration(DELIVERY_TTL_MIN)}"
            )
        cap = settings.WEBHOOK_MAX_DELIVERY_TTL
        if ttl > cap:
            raise serializers.ValidationError(
                f"at most {format_duration(cap)} (this deployment's limit)"
            )
        return ttl

    def validate_content_type(self, value: str) -> str:
        # Sent as the Content-Type header of every attempt: a value HTTP cannot
        # carry would fail each one here, before any request.
        if _CONTROL.search(value):
            raise serializers.ValidationError("must not contain control characters")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise serializers.ValidationError("must be ISO-8859-1 (latin-1) text")
        if not _MEDIA_TYPE.fullmatch(value):
            raise serializers.ValidationError(
                "must be a media type, e.g. application/json"
            )
        return value

    def validate_headers(self, headers: list[dict[str, str]] | None) -> list:
        headers = headers or []
        if sum(len(h["key"]) + len(h["value"]) + 2 for h in headers) > HEADERS_MAX:
            raise serializers.ValidationError(
                f"keys and values together (len(key)+len(value)+2 per header) "
                f"must be at most {HEADERS_MAX} characters"
            )
        seen: set[str] = set()
        duplicates: dict[int, dict[str, list[str]]] = {}
        for index, header in enumerate(headers):
            name = header["key"].lower()
            if name in seen:
                duplicates[index] = {"key": ["duplicate header name"]}
            seen.add(name)
        if duplicates:
            raise serializers.ValidationError(duplicates)
        return headers

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        clashes: dict[int, dict[str, list[str]]] = {}
        profile_headers = _PROFILE_HEADERS.get(attrs.get("profile"), frozenset())
        for index, header in enumerate(attrs.get("headers") or []):
            name = header["key"].lower()
            if attrs.get("oauth2") and name == "authorization":
                clashes[index] = {"key": ["reserved header name when oauth2 is set"]}
            elif name in profile_headers:
                clashes[index] = {"key": ["reserved header name of this profile"]}
        if clashes:
            raise serializers.ValidationError({"headers": clashes})
        return attrs


class _WebhookRequestSerializer(StrictSerializer):
    event_groups = StrictListField(
        child=StrictCharField(max_length=130),
        min_length=1,
        max_length=EVENT_GROUPS_MAX,
        allow_empty=False,
    )
    configuration = ConfigurationSerializer()

    def validate_event_groups(self, groups: list[str]) -> list[str]:
        catalogue = selectors.event_type_catalogue()
        errors: dict[int, list[str]] = {}
        for index, group in enumerate(groups):
            type_name, colon, subtype = group.partition(":")
            if type_name not in catalogue:
                errors[index] = [f"unknown event type {type_name!r}"]
            elif colon and subtype not in catalogue[type_name]:
                errors[index] = [f"unknown subtype {subtype!r} of {type_name}"]
        if errors:
            raise serializers.ValidationError(errors)
        return list(dict.fromkeys(groups))


class WebhookCreateSerializer(_WebhookRequestSerializer):
    """A new webhook. Unknown fields are a 400."""

    trackingId = StrictCharField(  # noqa: N815 - the API's field name
        max_length=TRACKING_ID_MAX, required=False, allow_null=True
    )


class WebhookBatchCreateSerializer(_WebhookRequestSerializer):
    """One webhook per tracking id. Unknown fields are a 400."""

    trackingIds = StrictListField(  # noqa: N815 - the API's field name
        child=StrictCharField(max_length=TRACKING_ID_MAX),
        min_length=1,
        max_length=BATCH_MAX,
        allow_empty=False,
    )

    def validate_trackingIds(self, tracking_ids: list[str]) -> list[str]:  # noqa: N802
        seen: set[str] = set()
        duplicates = [t for t in tracking_ids if t in seen or seen.add(t)]
        if duplicates:
            names = ", ".join(sorted(set(duplicates)))
            raise serializers.ValidationError(f"duplicate tracking ids: {names}")
        return tracking_ids


class QuerySerializer(serializers.Serializer):
    """Query parameters as sent: DRF reads `?status=` from a QueryDict as if
    the parameter were absent, so a blank value would silently mean "no
    filter" (or the default). Here it is validated like any other value."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if hasattr(data, "getlist"):
            data = {key: data[key] for key in data}  # the last value of each
        return super().to_internal_value(data)


class WebhookListQuerySerializer(QuerySerializer):
    """Query parameters of GET /api/v1/webhooks/."""

    limit = serializers.IntegerField(
        required=False,
        default=LIST_LIMIT_DEFAULT,
        help_text="At most this many per page (a page also stops at the "
        "deployment's WEBHOOK_LIST_PAGE_SIZE).",
        min_value=1,
        max_value=LIST_LIMIT_MAX,
        error_messages={
            "invalid": "must be an integer",
            "min_value": "at least {min_value}",
            "max_value": "at most {max_value}",
            "max_string_length": "must be an integer",
        },
    )
    status = serializers.ChoiceField(
        required=False,
        choices=Subscription.Status.choices,
        error_messages={
            "invalid_choice": "must be one of active, paused, expired, disabled"
        },
    )
    cursor = CursorField(help_text='From the `Link: <…>; rel="next"` header.')


class DeleteQuerySerializer(QuerySerializer):
    includeWebhook = serializers.BooleanField(  # noqa: N815 - the API's field name
        required=False, default=False, error_messages={"invalid": "must be a boolean"}
    )


# --- responses --------------------------------------------------------------


def iso_utc(value: datetime) -> str:
    """`2026-11-22T10:00:00Z`: whole seconds, as clients of Event Cast parse it."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class HeaderNameSerializer(serializers.Serializer):
    """A custom header's name (its value is never returned)."""

    key = serializers.CharField()


class OAuth2OutSerializer(serializers.Serializer):
    """OAuth2 settings, without the client secret."""

    token_url = serializers.CharField()
    client_id = serializers.CharField()
    audience = serializers.CharField(allow_null=True)
    scope = serializers.CharField(allow_null=True)


class ConfigurationOutSerializer(serializers.Serializer):
    """The configuration as shown: header names only."""

    url = serializers.CharField()
    content_type = serializers.CharField()
    headers = HeaderNameSerializer(many=True)
    oauth2 = OAuth2OutSerializer(
        required=False, help_text="Present only when OAuth2 is configured."
    )
    profile = serializers.ChoiceField(choices=Subscription.Profile.choices)
    delivery_ttl = serializers.CharField(
        help_text="How long each delivery is retried, e.g. 24h or 7d."
    )
    rate_limit = serializers.CharField(
        allow_null=True, help_text="e.g. 10/s or 600/m; null: no limit."
    )


class WebhookSerializer(serializers.Serializer):
    """The webhook object. Header values and the OAuth2 client secret are never
    shown; `secret` only when the context says `include_secret`."""

    id = serializers.UUIDField()
    authenticator = serializers.CharField(help_text="The client's name.")
    trackingId = serializers.CharField(allow_null=True)  # noqa: N815
    event_groups = serializers.ListField(child=serializers.CharField())
    configuration = ConfigurationOutSerializer()
    status = serializers.ChoiceField(choices=Subscription.Status.choices)
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField()
    paused_reason = serializers.CharField(
        required=False, help_text="Present only when paused."
    )
    secret = serializers.CharField(
        required=False,
        help_text="The signing secret; only in the answer of a create.",
    )

    def to_representation(self, sub: Subscription) -> dict[str, Any]:
        now = self.context.get("now") or timezone.now()
        configuration: dict[str, Any] = {
            "url": sub.url,
            "content_type": sub.content_type,
            "headers": [{"key": name} for name in sub.header_names],
            "profile": sub.profile,
            "delivery_ttl": format_duration(sub.effective_delivery_ttl),
            "rate_limit": sub.rate_limit or None,
        }
        if sub.has_oauth2:
            configuration["oauth2"] = {
                "token_url": sub.oauth2_token_url,
                "client_id": sub.oauth2_client_id,
                "audience": sub.oauth2_audience or None,
                "scope": sub.oauth2_scope or None,
            }
        status = selectors.effective_status(sub, now=now)
        body: dict[str, Any] = {
            "id": str(sub.id),
            "authenticator": self.context.get("client_name") or sub.client.name,
            "trackingId": sub.tracking_id,
            "event_groups": list(sub.event_groups),
            "configuration": configuration,
            "status": status,
            "created": iso_utc(sub.created_at),
            "expiry": iso_utc(sub.expires_at),
        }
        if status in Subscription.HOLDING:
            body["paused_reason"] = sub.paused_reason
        if self.context.get("include_secret"):
            body["secret"] = sub.secret
        return body


class SecretSerializer(serializers.Serializer):
    """The answer of rotate-secret."""

    secret = serializers.CharField(help_text="The new signing secret (whsec_…).")


class NotificationSettingsSerializer(StrictSerializer):
    """PUT /api/v1/notification-settings: where operational notifications about
    the client's webhooks go; null stops them."""

    notification_url = StrictCharField(
        max_length=URL_MAX,
        allow_null=True,
        help_text="An http(s) URL, vetted like a webhook's; null: no notifications.",
    )

    def validate_notification_url(self, value: str | None) -> str | None:
        if value is not None:
            _check_http_url(value)
            _check_destination(value)
        return value


class NotificationSettingsOutSerializer(serializers.Serializer):
    notification_url = serializers.CharField(allow_null=True)
    secret = serializers.CharField(
        required=False,
        help_text="The signing secret (whsec_…); only in the answer of a PUT "
        "that sets a URL.",
    )
