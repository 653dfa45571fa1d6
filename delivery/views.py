"""The delivery endpoints (docs/api.md, "Deliveries", and /webhooks/{id}/test and
/deliveries): parse, call one service or selector, shape."""

import uuid

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from delivery import selectors, services
from delivery.models import Delivery
from delivery.ops import replay
from delivery.serializers import (
    BulkRetryResultSerializer,
    BulkRetrySerializer,
    DeliveryListQuerySerializer,
    DeliveryPageSerializer,
    DeliverySerializer,
    TestDeliverySerializer,
    WebhookReplayResultSerializer,
    WebhookReplaySerializer,
)
from subscriptions import selectors as subscription_selectors
from subscriptions.auth import HasSubscriptionsScope
from subscriptions.models import Subscription
from webhooks_project.cursors import encode_cursor
from webhooks_project.errors import Conflict, ErrorEnvelopeSerializer
from webhooks_project.ids import parse_public_id


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorEnvelopeSerializer) for code in codes}


def _uuid(value: str, what: str) -> uuid.UUID:
    # Not a UUID cannot be anyone's id: the same 404 as someone else's.
    parsed = parse_public_id(value)
    if parsed is None:
        raise exceptions.NotFound(f"{what} not found.")
    return parsed


_ID = [OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)]


class _DeliveryApiView(APIView):
    permission_classes = [HasSubscriptionsScope]

    def get_subscription(self, subscription_id: str) -> Subscription:
        subscription = subscription_selectors.get_subscription(
            client=self.request.user,
            subscription_id=_uuid(subscription_id, "Webhook"),
        )
        if subscription is None:
            raise exceptions.NotFound("Webhook not found.")
        return subscription

    def get_delivery(self, delivery_id: str) -> Delivery:
        delivery = selectors.get_delivery(
            client=self.request.user, delivery_id=_uuid(delivery_id, "Delivery")
        )
        if delivery is None:
            raise exceptions.NotFound("Delivery not found.")
        return delivery


class WebhookTestView(_DeliveryApiView):
    @extend_schema(
        operation_id="webhooks_test",
        parameters=_ID,
        request=None,
        responses={202: TestDeliverySerializer, **_errors(401, 403, 404, 429)},
        description=(
            "Send one dummy event (`type` TEST) to the webhook once, with no retry. "
            "It is recorded as a delivery of kind `test`: `succeeded` on a 2xx, "
            "`failed` on anything else."
        ),
        tags=["webhooks"],
    )
    def post(self, request: Request, id: str) -> Response:
        delivery = services.send_test_delivery(subscription=self.get_subscription(id))
        return Response(
            TestDeliverySerializer({"delivery_id": delivery.id}).data,
            status=status.HTTP_202_ACCEPTED,
        )


def _too_many(
    exc: services.TooManyDeliveries, field: str
) -> exceptions.ValidationError:
    return exceptions.ValidationError({field: [exc.message]})


class WebhookReplayView(_DeliveryApiView):
    @extend_schema(
        operation_id="webhooks_replay",
        parameters=_ID,
        request=WebhookReplaySerializer,
        responses={
            202: WebhookReplayResultSerializer,
            **_errors(400, 401, 403, 404, 409, 429),
        },
        description=(
            "Send the webhook's deliveries created in [since, until) whose status "
            "is in `status` again, as new deliveries due now. An event is "
            "replayed from its newest delivery only, so a repeat sends nothing "
            "twice; the same body again within 10 minutes answers the first "
            f"result. 400 if more than {replay.WEBHOOK_REPLAY_MAX} deliveries match; "
            "409 while the same request is still being carried out."
        ),
        tags=["webhooks"],
    )
    def post(self, request: Request, id: str) -> Response:
        subscription = self.get_subscription(id)
        body = WebhookReplaySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            result = replay.replay_webhook(
                subscription=subscription,
                since=body.validated_data["since"],
                until=body.validated_data.get("until"),
                statuses=body.validated_data["status"],
            )
        except services.TooManyDeliveries as exc:
            raise _too_many(exc, "since")
        except replay.ReplayInProgress as exc:
            raise Conflict(str(exc))
        return Response(
            {"replayed": result.created, "skipped": result.skipped},
            status=status.HTTP_202_ACCEPTED,
        )


class BulkRetryView(_DeliveryApiView):
    @extend_schema(
        operation_id="deliveries_bulk_retry",
        request=BulkRetrySerializer,
        responses={202: BulkRetryResultSerializer, **_errors(400, 401, 403, 404, 429)},
        description=(
            "Retry (as POST /api/v1/deliveries/{id}/retry) your deliveries given "
            "by `ids`, or those of `webhook` created in [since, until), whose "
            "status is in `status`. Ids that are unknown or not yours are counted "
            "in `skipped`, never touched. A retried delivery is pending, so a "
            f"repeat retries nothing. At most {services.BULK_RETRY_MAX}; 404 if "
            "`webhook` is not yours."
        ),
        tags=["deliveries"],
    )
    def post(self, request: Request) -> Response:
        body = BulkRetrySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        subscription_id = None
        if "webhook" in data:
            subscription_id = self.get_subscription(str(data["webhook"])).pk
        try:
            result = services.retry_deliveries(
                client_id=request.user.pk,
                statuses=data["status"],
                ids=data.get("ids"),
                subscription_id=subscription_id,
                since=data.get("since"),
                until=data.get("until"),
            )
        except services.TooManyDeliveries as exc:
            raise _too_many(exc, "ids" if "ids" in data else "since")
        return Response(
            {"retried": result.retried, "skipped": result.skipped},
            status=status.HTTP_202_ACCEPTED,
        )


class WebhookDeliveriesView(_DeliveryApiView):
    @extend_schema(
        operation_id="webhooks_deliveries",
        parameters=[*_ID, DeliveryListQuerySerializer],
        responses={200: DeliveryPageSerializer, **_errors(400, 401, 403, 404, 429)},
        description=(
            "The webhook's deliveries, newest first, with their attempts. "
            "`limit` 1–1000 (default 100); pass `next` back as `cursor`. "
            "`event_id`: only those of one event, by our UUID or the "
            "publisher's own event `id`."
        ),
        tags=["deliveries"],
    )
    def get(self, request: Request, id: str) -> Response:
        subscription = self.get_subscription(id)
        query = DeliveryListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        limit = query.validated_data["limit"]
        rows = selectors.list_deliveries(
            subscription=subscription,
            limit=limit,
            status=query.validated_data.get("status"),
            before=query.validated_data.get("cursor"),
            event_id=query.validated_data.get("event_id"),
        )
        page = rows[:limit]
        cursor = (
            encode_cursor(page[-1].created_at, page[-1].id)
            if len(rows) > limit
            else None
        )
        return Response(
            {"results": DeliverySerializer(page, many=True).data, "next": cursor}
        )


class DeliveryDetailView(_DeliveryApiView):
    @extend_schema(
        operation_id="deliveries_retrieve",
        parameters=_ID,
        responses={200: DeliverySerializer, **_errors(401, 403, 404, 429)},
        tags=["deliveries"],
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(DeliverySerializer(self.get_delivery(id)).data)


class DeliveryRetryView(_DeliveryApiView):
    @extend_schema(
        operation_id="deliveries_retry",
        parameters=_ID,
        request=None,
        responses={202: DeliverySerializer, **_errors(401, 403, 404, 409, 429)},
        description=(
            "Send a `failed`, `expired`, `cancelled` or `pending` delivery again "
            "now, as a new attempt with a fresh TTL and the backoff table from "
            "the start. 409 if it already succeeded, or its webhook is paused "
            "(resume it instead) or deleted."
        ),
        tags=["deliveries"],
    )
    def post(self, request: Request, id: str) -> Response:
        delivery = self.get_delivery(id)
        try:
            services.retry_delivery(delivery_id=delivery.id)
        except services.DeliveryNotRetriable as exc:
            raise Conflict(str(exc))
        return Response(
            DeliverySerializer(self.get_delivery(id)).data,
            status=status.HTTP_202_ACCEPTED,
        )
