"""API key authentication (`Authorization: Bearer <key>`) and scope permissions."""

import hashlib
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from subscriptions.models import ApiKey, Client
from webhooks_project.lookups import LookupCache

KEY_PREFIX = "whk_"
# last_used_at is informational: refresh it at most this often, not on every request.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


# Live keys (with their client) by hash: every request looks its key up, and
# a revoked or deleted key stops working within WEBHOOK_LOOKUP_CACHE_TTL on
# every process (at once on this one: revoke_api_key discards it).
live_keys: LookupCache[ApiKey] = LookupCache("api keys")


def forget_keys(**kwargs: object) -> None:
    """A receiver of post_save/post_delete of ApiKey and Client, and of
    m2m_changed of a key's tenants (connected in SubscriptionsConfig.ready):
    a key, its tenants or a client changed in this process is read afresh on
    the next request."""
    live_keys.clear()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _live_key(key_hash: str) -> ApiKey | None:
    # With its bound tenants (ApiKey.bound_tenant_ids), read with it and
    # cached with it: publishing asks them of every request.
    return (
        ApiKey.objects.select_related("client")
        .prefetch_related("tenants")
        .filter(key_hash=key_hash, revoked_at__isnull=True)
        .first()
    )


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
        key_hash = hash_key(key.strip())
        api_key = live_keys.get(key_hash, lambda: _live_key(key_hash))
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        now = timezone.now()
        if (
            api_key.last_used_at is None
            or now - api_key.last_used_at > _LAST_USED_RESOLUTION
        ):
            # On the cached row too, so the next requests skip the UPDATE.
            api_key.last_used_at = now
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
