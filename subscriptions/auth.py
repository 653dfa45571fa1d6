"""API key authentication (`Authorization: Bearer <key>`) and scope permissions."""

import hashlib
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from subscriptions.models import ApiKey, Client

KEY_PREFIX = "whk_"
# last_used_at is informational: refresh it at most this often, not on every request.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Sets request.user to the key's Client and request.auth to the ApiKey."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Client, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode(
            errors="replace"
        )
        if not header:
            return None
        scheme, _, key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not key.strip():
            raise exceptions.AuthenticationFailed(
                "Use 'Authorization: Bearer <api key>'."
            )
        api_key = (
            ApiKey.objects.select_related("client")
            .filter(key_hash=hash_key(key.strip()), revoked_at__isnull=True)
            .first()
        )
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        now = timezone.now()
        if (
            api_key.last_used_at is None
            or now - api_key.last_used_at > _LAST_USED_RESOLUTION
        ):
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return api_key.client, api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class _HasScope(permissions.BasePermission):
    scope: str = ""
    message = "This API key lacks the scope needed here."

    def has_permission(self, request: Request, view: object) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False
        if self.scope not in api_key.scopes:
            self.message = f"This API key lacks the '{self.scope}' scope."
            return False
        return True


class HasSubscriptionsScope(_HasScope):
    scope = ApiKey.Scope.SUBSCRIPTIONS


class HasPublishScope(_HasScope):
    scope = ApiKey.Scope.PUBLISH
