"""The API's error envelope: every 4xx and 5xx is

    {"uuid": "KFCtYw", "status": "400", "reason": "one sentence", "errors": {...}}

`uuid` is logged with the failure so an operator can find the request.
"""

import logging
import secrets
import string
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger("webhooks.api")

_ALPHABET = string.ascii_letters + string.digits
_REASONS = {
    400: "The request is invalid.",
    401: "Authentication credentials were not provided or are not valid.",
    403: "This API key does not have the scope needed for this request.",
    404: "Not found.",
    405: "Method not allowed.",
    409: "Conflict.",
    413: "The request body is too large.",
    415: "Unsupported media type; send application/json.",
    429: "Too many requests.",
    500: "Internal server error; the failure has been logged under this uuid.",
    503: "Service unavailable.",
}


@extend_schema_serializer(component_name="Error")
class ErrorEnvelopeSerializer(serializers.Serializer):
    """The body of every 4xx and 5xx answer, and nothing else at the top level."""

    uuid = serializers.CharField(help_text="Identifies the failing request in logs.")
    status = serializers.CharField(help_text="The HTTP status, as a string.")
    reason = serializers.CharField(help_text="One human sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Field path (e.g. configuration.url) -> messages.",
    )


def new_error_uuid() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def envelope(
    status_code: int,
    reason: str | None = None,
    errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uuid": new_error_uuid(),
        "status": str(status_code),
        "reason": reason or _REASONS.get(status_code, "Error."),
    }
    if errors:
        body["errors"] = errors
    return body


def flatten_errors(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail -> {"configuration.headers.0.key": ["..."]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = "" if key in ("non_field_errors", "detail") else str(key)
            path = ".".join(p for p in (prefix, name) if p)
            flat.update(flatten_errors(value, path))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            return {prefix or "body": [str(item) for item in detail]} if detail else {}
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(
                    flatten_errors(item, f"{prefix}.{index}" if prefix else str(index))
                )
        return flat
    return {prefix or "body": [str(detail)]}


def _reason_from(errors: dict[str, list[str]]) -> str:
    path, messages = next(iter(errors.items()))
    message = messages[0].rstrip(".")
    return message if path == "body" else f"{path}: {message}"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


class DatabaseUnavailable(exceptions.APIException):
    """PostgreSQL is unreachable (down, restarting). A 503, not a 500: the
    request may be sent again, and an event sent with its `id` is published
    once even if the commit's answer was the part that got lost."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable; try again shortly."
    default_code = "database_unavailable"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler returning the envelope for every error, 500 included."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, (OperationalError, InterfaceError)):
        exc = DatabaseUnavailable()

    headers: dict[str, str] = {}
    if isinstance(exc, exceptions.APIException):
        code = exc.status_code
        if isinstance(exc, exceptions.ValidationError):
            errors = flatten_errors(exc.detail)
            body = envelope(code, _reason_from(errors) if errors else None, errors)
        else:
            detail = exc.detail if isinstance(exc.detail, str) else None
            body = envelope(code, str(detail) if detail else None)
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        if code == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
    else:
        code = 500
        body = envelope(500)
    response = Response(body, status=code, headers=headers)
    log_error(body, context.get("request"), response=response, exc_info=code == 500)
    set_rollback()
    return response


def log_error(
    body: dict[str, Any],
    request: HttpRequest | None,
    *,
    response: HttpResponse | None = None,
    exc_info: bool = False,
) -> None:
    """The one log line of an error answer, carrying the envelope's uuid.

    Names the method and path (never the query string) and the invalid field
    paths, not their messages: a message may echo what was sent, header
    values included. Marks `response` as logged, so Django's own
    `django.request` line (without the uuid) is not written as well.
    """
    code = int(body["status"])
    method = getattr(request, "method", "?")
    path = getattr(request, "path", "?")
    logger.log(
        logging.ERROR if code >= 500 else logging.WARNING,
        "%s %s on %s %s",
        "unhandled error" if exc_info else "error",
        body["uuid"],
        method,
        path,
        exc_info=exc_info,
        extra={
            "uuid": body["uuid"],
            "status_code": code,
            "method": method,
            "path": path,
            "fields": sorted(body.get("errors", {})),
        },
    )
    if response is not None:
        # What django.utils.log.log_response checks to avoid a second line.
        response._has_been_logged = True  # type: ignore[attr-defined]


def _answer(
    request: HttpRequest, status_code: int, reason: str | None = None
) -> JsonResponse:
    body = envelope(status_code, reason)
    response = JsonResponse(body, status=status_code)
    log_error(body, request, response=response)
    return response


# Django's own error views (errors raised outside DRF views, unknown URLs),
# so that every error of the service has the envelope.


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return _answer(request, 404)


@csrf_exempt  # else a POST or DELETE to an unknown path is CSRF's HTML 403
def unknown_url(request: HttpRequest, path: str = "") -> JsonResponse:
    """The last URL pattern: any other path is a 404 in the envelope, also
    with DEBUG on (where Django would render its HTML page instead)."""
    return not_found(request)


def csrf_failure(request: HttpRequest, reason: str = "") -> JsonResponse:
    """CSRF_FAILURE_VIEW: the API authenticates by Bearer key and its views are
    exempt, but a non-API view (e.g. POST /health) still meets the CSRF check."""
    return _answer(request, 403, "CSRF verification failed.")


def bad_request(
    request: HttpRequest, exception: Exception | None = None
) -> JsonResponse:
    # A body over DATA_UPLOAD_MAX_MEMORY_SIZE read outside a DRF view.
    if isinstance(exception, RequestDataTooBig):
        return _answer(request, 413)
    return _answer(request, 400)


def permission_denied(
    request: HttpRequest, exception: Exception | None = None
) -> JsonResponse:
    return _answer(request, 403, "Forbidden.")


def method_not_allowed(request: HttpRequest, allowed: list[str]) -> JsonResponse:
    response = _answer(request, 405)
    response["Allow"] = ", ".join(allowed)
    return response


def server_error(request: HttpRequest) -> JsonResponse:
    # Called while Django handles the exception: the line carries its traceback.
    body = envelope(500)
    response = JsonResponse(body, status=500)
    log_error(body, request, response=response, exc_info=True)
    return response
