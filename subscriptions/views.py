"""The webhook endpoints (docs/api.md, "Webhooks"): parse, call one service, shape."""

from typing import Any
from uuid import UUID

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from subscriptions import selectors, services
from subscriptions.auth import HasSubscriptionsScope
from subscriptions.models import Client, Subscription
from subscriptions.serializers import (
    DeleteQuerySerializer,
    NotificationSettingsOutSerializer,
    NotificationSettingsSerializer,
    SecretSerializer,
    WebhookBatchCreateSerializer,
    WebhookCreateSerializer,
    WebhookListQuerySerializer,
    WebhookSerializer,
)
from webhooks_project.cursors import encode_cursor
from webhooks_project.errors import Conflict, ErrorEnvelopeSerializer


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(ErrorEnvelopeSerializer) for code in codes}


def _conflict(exc: services.DuplicateSubscription) -> Conflict:
    return Conflict(exc.message)


def _over_quota(exc: services.WebhookQuotaExceeded) -> Conflict:
    return Conflict(exc.message)


class _WebhookView(APIView):
    permission_classes = [HasSubscriptionsScope]

    def represent(
        self, subscriptions: Any, *, many: bool = False, include_secret: bool = False
    ) -> Any:
        client: Client = self.request.user
        context = {
            "client_name": client.name,
            "include_secret": include_secret,
            "now": timezone.now(),
        }
        return WebhookSerializer(subscriptions, many=many, context=context).data

    def get_subscription(self, subscription_id: UUID) -> Subscription:
        subscription = selectors.get_subscription(
            client=self.request.user, subscription_id=subscription_id
        )
        if subscription is None:
            raise exceptions.NotFound("Webhook not found.")
        return subscription


class WebhookListCreateView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_list",
        tags=["webhooks"],
        parameters=[
            WebhookListQuerySerializer,
            OpenApiParameter(
                "Link",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                description='`<URL of the next page>; rel="next"`, absent on the last.',
            ),
        ],
        responses={200: WebhookSerializer(many=True), **_errors(400, 401, 403, 429)},
        description=(
            "The client's webhooks that are not expired, newest first, at most "
            "WEBHOOK_LIST_PAGE_SIZE per page; a `Link` header gives the next page."
        ),
    )
    def get(self, request: Request) -> Response:
        query = WebhookListQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        size = min(query.validated_data["limit"], settings.WEBHOOK_LIST_PAGE_SIZE)
        rows = list(
            selectors.list_subscriptions(
                client=request.user,
                limit=size + 1,  # the extra row says there is a next page
                status=query.validated_data.get("status"),
                before=query.validated_data.get("cursor"),
            )
        )
        page = rows[:size]
        response = Response(self.represent(page, many=True))
        if len(rows) > size:
            # The body stays the contract's JSON list; the next page is a
            # link (RFC 8288) to this URL with the cursor, other parameters kept.
            cursor = encode_cursor(page[-1].created_at, page[-1].id)
            url = replace_query_param(request.build_absolute_uri(), "cursor", cursor)
            response["Link"] = f'<{url}>; rel="next"'
        return response

    @extend_schema(
        operation_id="webhooks_create",
        tags=["webhooks"],
        request=WebhookCreateSerializer,
        responses={201: WebhookSerializer, **_errors(400, 401, 403, 409, 413, 429)},
        description=(
            "Create a webhook. `secret` is returned only here. 409 for an "
            "identical live webhook, or past WEBHOOK_MAX_WEBHOOKS_PER_CLIENT."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = WebhookCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            subscription = services.create_subscription(
                client=request.user,
                config=services.config_from_request(serializer.validated_data),
                tracking_id=serializer.validated_data.get("trackingId"),
            )
        except services.DuplicateSubscription as exc:
            raise _conflict(exc)
        except services.WebhookQuotaExceeded as exc:
            raise _over_quota(exc)
        return Response(
            self.represent(subscription, include_secret=True),
            status=status.HTTP_201_CREATED,
        )


class WebhookBatchCreateView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_batch_create",
        tags=["webhooks"],
        request=WebhookBatchCreateSerializer,
        responses={
            201: WebhookSerializer(many=True),
            **_errors(400, 401, 403, 409, 413, 429),
        },
        description=(
            "One webhook per tracking id, all or none: 409 if any would be a "
            "duplicate, or if they do not all fit in WEBHOOK_MAX_WEBHOOKS_PER_CLIENT."
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = WebhookBatchCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            subscriptions = services.create_subscriptions_batch(
                client=request.user,
                config=services.config_from_request(serializer.validated_data),
                tracking_ids=serializer.validated_data["trackingIds"],
            )
        except services.DuplicateSubscription as exc:
            raise _conflict(exc)
        except services.WebhookQuotaExceeded as exc:
            raise _over_quota(exc)
        return Response(
            self.represent(subscriptions, many=True, include_secret=True),
            status=status.HTTP_201_CREATED,
        )


@extend_schema_view(get=extend_schema(exclude=True))
class WebhookCreateView(WebhookListCreateView):
    """`/api/v1/webhooks`: documented for POST (GET works here too)."""


@extend_schema_view(post=extend_schema(exclude=True))
class WebhookListView(WebhookListCreateView):
    """`/api/v1/webhooks/`: documented for GET (POST works here too)."""


@extend_schema(exclude=True)
class WebhookBatchCreateSlashView(WebhookBatchCreateView):
    """`/batch/api/v1/webhooks/`, an undocumented alias."""


class WebhookDetailView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_retrieve",
        tags=["webhooks"],
        responses={200: WebhookSerializer, **_errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, id: UUID) -> Response:
        return Response(self.represent(self.get_subscription(id)))

    @extend_schema(
        operation_id="webhooks_destroy",
        tags=["webhooks"],
        parameters=[
            OpenApiParameter(
                "includeWebhook",
                bool,
                description="Answer 200 with the deleted webhook instead of 204.",
            )
        ],
        responses={
            200: WebhookSerializer,
            204: OpenApiResponse(description="Deleted."),
            **_errors(400, 401, 403, 404, 429),
        },
        description="Delete a webhook; its pending deliveries are cancelled.",
    )
    def delete(self, request: Request, id: UUID) -> Response:
        query = DeleteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        subscription = self.get_subscription(id)
        body = self.represent(subscription)
        services.delete_subscription(subscription=subscription)
        if query.validated_data["includeWebhook"]:
            return Response(body)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookResumeView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_resume",
        tags=["webhooks"],
        request=None,
        responses={200: WebhookSerializer, **_errors(401, 403, 404, 409, 429)},
        description="Reactivate a paused webhook and release its held deliveries.",
    )
    def post(self, request: Request, id: UUID) -> Response:
        subscription = self.get_subscription(id)
        try:
            subscription = services.resume_subscription(subscription=subscription)
        except services.SubscriptionNotPaused:
            raise Conflict("The webhook is not paused.")
        return Response(self.represent(subscription))


class WebhookRotateSecretView(_WebhookView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        tags=["webhooks"],
        request=None,
        responses={200: SecretSerializer, **_errors(401, 403, 404, 429)},
        description=(
            "A new signing secret. During WEBHOOK_SECRET_ROTATION_OVERLAP requests "
            "carry signatures with both the new and the old secret."
        ),
    )
    def post(self, request: Request, id: UUID) -> Response:
        secret = services.rotate_secret(subscription=self.get_subscription(id))
        return Response({"secret": secret})


class NotificationSettingsView(APIView):
    permission_classes = [HasSubscriptionsScope]

    @extend_schema(
        operation_id="notification_settings_read",
        tags=["notifications"],
        responses={
            200: NotificationSettingsOutSerializer,
            **_errors(401, 403, 429),
        },
        description="Where operational notifications about your webhooks go.",
    )
    def get(self, request: Request) -> Response:
        url = (
            Client.objects.filter(pk=request.user.pk)
            .values_list("notification_url", flat=True)
            .first()
        )
        return Response({"notification_url": url or None})

    @extend_schema(
        operation_id="notification_settings_update",
        tags=["notifications"],
        request=NotificationSettingsSerializer,
        responses={
            200: NotificationSettingsOutSerializer,
            **_errors(400, 401, 403, 429),
        },
        description=(
            "Send operational notifications (webhook.paused, webhook.disabled, "
            "webhook.expired, webhook.recovered, delivery.exhausted) to this URL, "
            "signed with a new secret returned once; null stops them."
        ),
    )
    def put(self, request: Request) -> Response:
        body = NotificationSettingsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        url = body.validated_data["notification_url"]
        secret = services.set_notification_url(client=request.user, url=url)
        answer: dict[str, Any] = {"notification_url": url}
        if secret:
            answer["secret"] = secret
        return Response(answer)
