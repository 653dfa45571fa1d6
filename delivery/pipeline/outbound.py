"""The request a receiver gets (docs/api.md, "What a receiver gets")."""

import json
from datetime import UTC, datetime
from typing import Any

import webhooks_project
from delivery.sender import signing
from delivery.sender.types import OAuth2Config, OutboundRequest
from events.models import Event
from subscriptions.models import Subscription

USER_AGENT = f"webhooks/{webhooks_project.__version__}"


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as the API writes times."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def envelope(event: Event, subscription_id: Any) -> dict[str, Any]:
    """The JSON body: the event as receivers see it."""
    return {
        "id": str(event.id),
        "type": event.type,
        "subtype": event.subtype,
        "resource_id": event.resource_id,
        "user_id": event.user_id,
        "resource_url": event.resource_url,
        "subscription_id": str(subscription_id),
        "payload": event.payload,
        "timestamp": iso_z(event.occurred_at),
    }


def signing_secrets(subscription: Subscription, *, now: datetime) -> list[str]:
    """The current secret, plus the previous one during a rotation overlap."""
    secrets = [subscription.secret]
    expires = subscription.previous_secret_expires_at
    if subscription.previous_secret and expires is not None and expires > now:
        secrets.append(subscription.previous_secret)
    return secrets


def oauth2_config(subscription: Subscription) -> OAuth2Config | None:
    if not subscription.has_oauth2:
        return None
    return OAuth2Config(
        token_url=subscription.oauth2_token_url,
        client_id=subscription.oauth2_client_id,
        client_secret=subscription.oauth2_client_secret,
        audience=subscription.oauth2_audience,
        scope=subscription.oauth2_scope,
    )


def build_request(
    *, event: Event, subscription: Subscription, now: datetime
) -> OutboundRequest:
    """Body serialised once; signed for this attempt's timestamp.

    webhook-id is the event id, the same on every retry, so receivers can
    deduplicate; custom headers cannot override the ones set here.
    """
    body = json.dumps(
        envelope(event, subscription.id), ensure_ascii=False, separators=(",", ":")
    )
    msg_id = str(event.id)
    own = {
        "Content-Type": subscription.content_type or "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Event": event.type,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signing.signature_header(
            msg_id=msg_id,
            timestamp=now,
            body=body,
            secrets=signing_secrets(subscription, now=now),
        ),
    }
    reserved = {name.lower() for name in own}
    headers = {
        header["key"]: header["value"]
        for header in subscription.headers or []
        if header["key"].lower() not in reserved
    }
    headers.update(own)
    return OutboundRequest(
        url=subscription.url,
        body=body.encode(),
        headers=headers,
        oauth2=oauth2_config(subscription),
    )
