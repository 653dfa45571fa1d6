"""The portal's forms turned into the API's request bodies, so the API's
serializers validate them and their messages are the ones the API gives."""

from collections.abc import Mapping
from typing import Any

from django.http import QueryDict

# Form field -> the API's error paths it shows (a path starting with it).
WEBHOOK_FIELDS = {
    "url": "configuration.url",
    "event_groups": "event_groups",
    "tracking_id": "trackingId",
    "profile": "configuration.profile",
    "delivery_ttl": "configuration.delivery_ttl",
    "content_type": "configuration.content_type",
    "headers": "configuration.headers",
}
REPLAY_FIELDS = {
    "webhook": "webhook",
    "since": "since",
    "until": "until",
    "status": "status",
}
EVENT_FILTERS = ("type", "status", "since", "until", "resource_id")


class HeaderLinesError(ValueError):
    """A line of the headers box is not `Name: value`."""


def header_lines(text: str) -> list[dict[str, str]]:
    """`Name: value` per line -> the API's [{"key", "value"}]; blank lines skipped."""
    headers = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon:
            raise HeaderLinesError(f"line {number}: write it as Name: value")
        headers.append({"key": key.strip(), "value": value.strip()})
    return headers


def webhook_body(form: QueryDict) -> dict[str, Any]:
    """The create form -> POST /api/v1/webhooks's body (empty fields left out,
    as an API client would). Raises HeaderLinesError."""
    configuration: dict[str, Any] = {"url": form.get("url", "")}
    for field in ("profile", "delivery_ttl", "content_type"):
        if form.get(field, "").strip():
            configuration[field] = form[field].strip()
    headers = header_lines(form.get("headers", ""))
    if headers:
        configuration["headers"] = headers
    body: dict[str, Any] = {
        "event_groups": form.getlist("event_groups"),
        "configuration": configuration,
    }
    if form.get("tracking_id", "").strip():
        body["trackingId"] = form["tracking_id"].strip()
    return body


def replay_body(form: QueryDict) -> dict[str, Any]:
    """The replay form -> POST /api/v1/webhooks/{id}/replay's body. The
    form's times are UTC without a zone (datetime-local inputs)."""
    body: dict[str, Any] = {"since": _utc(form.get("since", ""))}
    if form.get("until", "").strip():
        body["until"] = _utc(form["until"])
    if form.getlist("status"):
        body["status"] = form.getlist("status")
    return body


def event_query(params: QueryDict) -> dict[str, str]:
    """The events filter -> GET /api/v1/events's query (blank filters left out)."""
    query = {k: params[k].strip() for k in EVENT_FILTERS if params.get(k, "").strip()}
    for name in ("since", "until"):
        if name in query:
            query[name] = _utc(query[name])
    if params.get("cursor"):
        query["cursor"] = params["cursor"]
    return query


def _utc(value: str) -> str:
    """`2026-12-06T06:30` (a datetime-local input) -> `…Z`; other text as is,
    for the API's parser to accept or name."""
    value = value.strip()
    if len(value) in (16, 19) and value[10:11] == "T" and value[-1:].isdigit():
        return value + "Z"
    return value


def errors_by_field(
    errors: Mapping[str, list[str]], fields: Mapping[str, str]
) -> dict[str, list[str]]:
    """The API's flattened errors (path -> messages) under the form field whose
    path they start with; the rest under "" (shown above the form). A message
    about a part of the field (`configuration.headers.0.key`) keeps its path."""
    shown: dict[str, list[str]] = {}
    for path, messages in errors.items():
        field = next(
            (name for name, prefix in fields.items() if path.startswith(prefix)), ""
        )
        shown.setdefault(field, []).extend(
            message if path in (fields.get(field), "body") else f"{path}: {message}"
            for message in messages
        )
    return shown


def error_summary(errors: Mapping[str, list[str]]) -> list[str]:
    """Every message as the API's envelope names it: `path: message`."""
    return [
        message if path == "body" else f"{path}: {message}"
        for path, messages in errors.items()
        for message in messages
    ]
