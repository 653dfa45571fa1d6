"""SSRF guard (placeholder: the security work replaces this with the real check)."""

from django.conf import settings


class BlockedDestination(Exception):
    """The destination resolves to an address webhooks may not be sent to."""


def validate_destination(url: str) -> None:
    """Raise BlockedDestination(reason) if url may not receive webhooks.

    Honours WEBHOOK_ALLOW_PRIVATE_DESTINATIONS. Used at subscription creation
    (url and OAuth2 token_url) and at every attempt.
    """
    if settings.WEBHOOK_ALLOW_PRIVATE_DESTINATIONS:
        return
