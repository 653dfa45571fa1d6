"""The portal-sessions endpoint's shapes (docs/api.md, "Portal sessions")."""

from rest_framework import serializers

from webhooks_project.serializers import StrictSerializer


class PortalSessionRequestSerializer(StrictSerializer):
    """No fields: the session is for the API key's client. Unknown fields are a 400."""


class PortalSessionSerializer(serializers.Serializer):
    url = serializers.URLField(
        help_text="Send the customer's browser here; it works once, until expires_at."
    )
    expires_at = serializers.DateTimeField(help_text="At most 15 minutes from now.")
