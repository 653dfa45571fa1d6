"""The events API: publish, the event log, the type catalogue (docs/api.md)."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events import selectors, services
from events.serializers import (
    IDEMPOTENCY_HEADER,
    EventListQuerySerializer,
    EventLogSerializer,
    EventPageSerializer,
    EventSummarySerializer,
    EventTypeSerializer,
    PublishedBatchSerializer,
    PublishedEventSerializer,
    PublishEventBatchSerializer,
    PublishEventSerializer,
    with_idempotency_header,
)
from subscriptions.auth import HasPublishScope
from webhooks_project.errors import Conflict, ErrorEnvelopeSerializer, PayloadTooLarge


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorEnvelopeSerializer, description=description)


_UNAUTHORIZED = _error("Missing or unknown API key.")
_NOT_FOUND = _error("Not found, or not yours.")
_THROTTLED = _error("Too many requests from this key; see Retry-After.")
_NO_PUBLISH_SCOPE = _error(
    "The key lacks the `publish` scope, or is bound to other tenants than `tenant`."
)
_NOT_JSON = _error("The body is not application/json.")
_OVER_FANOUT = _error(
    "An event would create more deliveries than WEBHOOK_MAX_FANOUT; nothing "
    "was published."
)


# One serializer for every request, as a ListField has one child for all its
# items: a new one deep-copies its fields (~0.4 ms), and run_validation keeps
# no state on the instance.
_PUBLISH_BODY = PublishEventSerializer()


class _PublishView(APIView):
    permission_classes = [HasPublishScope]
    throttle_scope = "publish"


class PublishEventView(_PublishView):
    """POST publishes (publish key, publish throttle); GET lists the events
    the key may see (any key, the default throttle). One URL, one view: the
    per-method choice costs POST a string comparison."""

    def get_permissions(self) -> list:
        if self.request.method == "GET":
            return [IsAuthenticated()]
        return super().get_permissions()

    def get_throttles(self) -> list:
        if self.request.method == "GET":
            # The throttle reads the view's scope; this instance serves only
            # this request (as_view makes one per request).
            self.throttle_scope = None
        return super().get_throttles()

    @extend_schema(
        operation_id="list_events",
        summary="The events this key may see",
        description=(
            "Newest first. A subscriptions key: the events that reached your "
            "webhooks (at least one delivery to them), each with your deliveries "
            "counted by status. A publish key: the events you published, with "
            "all their deliveries counted. `since` inclusive, `until` exclusive, "
            "on the time the event was published. `status`: events with at least "
            "one such delivery (`pending` includes `held`). `limit` 1–1000 "
            "(default 100); pass `next` back as `cursor`."
        ),
        parameters=[EventListQuerySerializer],
        responses={
            200: EventPageSerializer,
            400: _error("A bad query parameter (named in `errors`)."),
            401: _UNAUTHORIZED,
            429: _THROTTLED,
        },
        tags=["events"],
    )
    def get(self, request: Request) -> Response:
        query = EventListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page, cursor = selectors.events_page(
            client=request.user,
            scopes=request.auth.scopes,
            limit=query.validated_data["limit"],
            query=query.validated_data,
        )
        return Response(
            {"results": EventSummarySerializer(page, many=True).data, "next": cursor}
        )

    @extend_schema(
        operation_id="publish_event",
        summary="Publish an event",
        description=(
            "Routes the event to every matching webhook and answers once the "
            "deliveries are stored. The same `id` (or Idempotency-Key) from the "
            "same publisher answers 200 with the existing event and creates nothing."
        ),
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                str,
                OpenApiParameter.HEADER,
                description="Same meaning as `id`; if both are given they must match.",
            )
        ],
        request=PublishEventSerializer,
        responses={
            202: OpenApiResponse(PublishedEventSerializer, "Published."),
            200: OpenApiResponse(
                PublishedEventSerializer, "Already published under this id."
            ),
            400: _error("Invalid event."),
            401: _UNAUTHORIZED,
            403: _NO_PUBLISH_SCOPE,
            409: _OVER_FANOUT,
            413: _error("The body or payload is over WEBHOOK_MAX_PAYLOAD_BYTES."),
            415: _NOT_JSON,
            429: _THROTTLED,
        },
        tags=["events"],
    )
    def post(self, request: Request) -> Response:
        limit = settings.WEBHOOK_MAX_PAYLOAD_BYTES
        if len(request.body) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        event = with_idempotency_header(
            _PUBLISH_BODY.run_validation(request.data),
            request.headers.get(IDEMPOTENCY_HEADER),
        )
        [result] = _publish(request, [event])
        # PublishedEventSerializer's shape (the schema's), built directly: a
        # serializer instance per response costs more than the rest of it.
        body = {"id": str(result.event.id), "deliveries": result.deliveries}
        return Response(body, status=_status_of([result]))


class PublishEventBatchView(_PublishView):
    @extend_schema(
        operation_id="publish_events_batch",
        summary="Publish several events at once",
        description=(
            "Each event as in POST /api/v1/events, all or none, in one "
            "transaction; an error names the event by its position "
            "(`events.3.type`). Idempotency is per event, by its `id`. Answers "
            "202 if any event was created, 200 if every one was a repeat."
        ),
        request=PublishEventBatchSerializer,
        responses={
            202: OpenApiResponse(PublishedBatchSerializer, "Published."),
            200: OpenApiResponse(
                PublishedBatchSerializer, "Every event was already published."
            ),
            400: _error("Invalid batch or event (or an Idempotency-Key header)."),
            401: _UNAUTHORIZED,
            403: _NO_PUBLISH_SCOPE,
            409: _OVER_FANOUT,
            413: _error(
                "The body is over WEBHOOK_MAX_REQUEST_BYTES, or a payload "
                "over WEBHOOK_MAX_PAYLOAD_BYTES."
            ),
            415: _NOT_JSON,
            429: _THROTTLED,
        },
        tags=["events"],
    )
    def post(self, request: Request) -> Response:
        if request.headers.get(IDEMPOTENCY_HEADER) is not None:
            raise exceptions.ValidationError(
                {IDEMPOTENCY_HEADER: ["not taken by a batch; give each event an id"]}
            )
        serializer = PublishEventBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        results = _publish(request, serializer.validated_data["events"], batch=True)
        body = PublishedBatchSerializer(
            {
                "events": [
                    {"id": r.event.id, "deliveries": r.deliveries, "created": r.created}
                    for r in results
                ],
                "deliveries": sum(r.deliveries for r in results if r.created),
            }
        ).data
        return Response(body, status=_status_of(results))


def _publish(
    request: Request, events: list[dict], *, batch: bool = False
) -> list[services.PublishResult]:
    """Validated event bodies -> publish_events(); its errors as the API's."""
    fields = [
        {
            "type": data["type"],
            "payload": data["payload"],
            "subtype": data.get("subtype"),
            "resource_id": data.get("resource_id"),
            "resource_url": data.get("resource_url"),
            "user_id": data.get("user_id"),
            "tenant": data.get("tenant"),
            "occurred_at": data.get("occurred_at"),
            "idempotency_key": data["idempotency_key"],
        }
        for data in events
    ]
    try:
        return services.publish_events(
            publisher=request.user,
            events=fields,
            tenants=request.auth.bound_tenant_ids(),
        )
    except services.PublishError as exc:
        path = f"events.{exc.index}.{exc.field}" if batch else exc.field
        if isinstance(exc, services.EventTooLarge):
            raise PayloadTooLarge(f"{path}: {exc.message}")
        if isinstance(exc, services.TenantNotAllowed):
            raise exceptions.PermissionDenied(f"{path}: {exc.message}")
        if isinstance(exc, services.FanOutExceeded):
            raise Conflict(
                f"events.{exc.index}: {exc.message}" if batch else exc.message
            )
        raise exceptions.ValidationError({path: [exc.message]})


def _status_of(results: list[services.PublishResult]) -> int:
    if any(result.created for result in results):
        return status.HTTP_202_ACCEPTED
    return status.HTTP_200_OK


class EventLogView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="get_event",
        summary="The event log of one event",
        description=(
            "The event and, per delivery visible to the caller, its webhook, "
            "status, attempts and last result. A publish key sees every delivery "
            "of its events; a subscriptions key sees its own deliveries (404 if "
            "it has none). `event_id` is our UUID or the publisher's own event "
            "`id`, among the events the caller may see; our UUID wins when a "
            "string is both."
        ),
        parameters=[
            OpenApiParameter(
                "event_id",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="Our UUID, or the publisher's own `id` of the event.",
            )
        ],
        responses={
            200: EventLogSerializer,
            401: _UNAUTHORIZED,
            404: _NOT_FOUND,
            429: _THROTTLED,
        },
        tags=["events"],
    )
    def get(self, request: Request, event_id: str) -> Response:
        log = selectors.event_log(
            event_id=event_id, client=request.user, scopes=request.auth.scopes
        )
        if log is None:
            raise exceptions.NotFound()
        return Response(EventLogSerializer(log).data)


class EventTypeListView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="list_event_types",
        summary="The event type catalogue",
        responses={
            200: EventTypeSerializer(many=True),
            401: _UNAUTHORIZED,
            429: _THROTTLED,
        },
        tags=["events"],
    )
    def get(self, request: Request) -> Response:
        types = selectors.list_event_types()
        return Response(EventTypeSerializer(types, many=True).data)
