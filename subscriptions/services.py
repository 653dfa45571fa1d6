"""Writes on clients and API keys. (Subscription services follow below.)"""

import secrets
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from subscriptions.auth import KEY_PREFIX, hash_key
from subscriptions.models import ApiKey, Client


@transaction.atomic
def create_api_key(
    *, client_name: str, scopes: Iterable[str], name: str = ""
) -> tuple[ApiKey, str]:
    """Create a key for the client (creating the client if needed).

    Returns the ApiKey row and the plaintext key, which is not stored and
    cannot be shown again. Raises ValueError for an unknown scope.
    """
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {ApiKey.Scope.values}, got {scopes}")
    client, _ = Client.objects.get_or_create(name=client_name)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        client=client,
        name=name,
        prefix=key[:12],
        key_hash=hash_key(key),
        scopes=scopes,
    )
    return api_key, key


def revoke_api_key(*, api_key: ApiKey) -> None:
    """Revoke the key; idempotent."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
