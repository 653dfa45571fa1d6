"""POST /api/v1/portal-sessions: a platform asks for a customer's portal link."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal import access
from portal.serializers import PortalSessionRequestSerializer, PortalSessionSerializer
from subscriptions.auth import HasSubscriptionsScope
from webhooks_project.errors import ErrorEnvelopeSerializer


class PortalSessionView(APIView):
    permission_classes = [HasSubscriptionsScope]

    @extend_schema(
        operation_id="portal_sessions_create",
        tags=["portal"],
        request=PortalSessionRequestSerializer,
        responses={
            201: PortalSessionSerializer,
            **{
                code: OpenApiResponse(ErrorEnvelopeSerializer)
                for code in (400, 401, 403, 429)
            },
        },
        description=(
            "A one-time link to the customer portal for the key's client: it "
            "works once, within 15 minutes, and opens a browser session that "
            "sees only this client's webhooks (WEBHOOK_PORTAL_SESSION_TTL)."
        ),
    )
    def post(self, request: Request) -> Response:
        PortalSessionRequestSerializer(data=request.data).is_valid(raise_exception=True)
        link = access.create_link(client=request.user)
        url = request.build_absolute_uri(reverse("portal-enter", args=[link.token]))
        body = PortalSessionSerializer({"url": url, "expires_at": link.expires_at})
        return Response(body.data, status=status.HTTP_201_CREATED)
