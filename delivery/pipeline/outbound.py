"""The request a receiver gets (docs/api.md, "What a receiver gets")."""

import json
from datetime import UTC, datetime
from typing import Any

import webhooks_project
from delivery.sender import signing
from delivery.sender.types import OAuth2Config, OutboundRequest
from events.models import Event
from subscriptions.headers import is_reserved
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


def raas_body(event: Event, subscription_id: Any, *, now: datetime) -> dict[str, Any]:
    """The raas profile's body, field for field as seed 002 lists it:

        id               "Webhook unique identifier"
        event_name       "Event name. User as that of header x-raas-event"
        resource_id      "Id of the resource for which the event was generated."
        user_id          "If user related resources are triggered as part of an
                          event then user_id will be sent as part of the payload."
        subscription_id  "Subscription Id for which this event was generated."
        payload          "In case of a cip tag status event, this contains a list
                          of cip tags for which the status has been updated."
        timestamp        "Timestamp when the webhook is posted."

    `id` is the event id (the same on every retry, so receivers deduplicate on
    it); `timestamp` is this attempt's time, so the body changes per attempt.
    """
    return {
        "id": str(event.id),
        "event_name": event.type,
        "resource_id": event.resource_id,
        "user_id": event.user_id,
        "subscription_id": str(subscription_id),
        "payload": event.payload,
        "timestamp": iso_z(now),
    }


def capillary_body(event: Event, subscription: Subscription) -> dict[str, Any]:
    """The capillary profile's body, the fields of seed 001's example:

        "eventName": "customerAdded", "eventId": "GSjhsJ87484SdghD4747",
        "orgId": 1655, "refId": "1655_684494987",
        "apiRequestId": "sdjsj78378d3287", "createdAt": 156474848484,

    eventId is the event id ("A duplicate event can be identified by the
    eventId parameter"); orgId the receiving client's numeric id; refId the
    resource id; apiRequestId the publisher's own event id (idempotency key)
    when it gave one, else the event id; createdAt the event's time in epoch
    milliseconds. `data` (the event's payload) is ours, not the seed's: the
    seed's payloads are "short and optimal", and without it a receiver would
    have to call back for every field.
    """
    return {
        "eventName": event.type,
        "eventId": str(event.id),
        "orgId": subscription.client_id,
        "refId": event.resource_id,
        "apiRequestId": event.idempotency_key or str(event.id),
        "createdAt": int(event.occurred_at.timestamp() * 1000),
        "data": event.payload,
    }


def body_of(
    *, event: Event, subscription: Subscription, now: datetime
) -> dict[str, Any]:
    """The JSON body in the subscription's profile."""
    profile = subscription.profile
    if profile == Subscription.Profile.RAAS:
        return raas_body(event, subscription.id, now=now)
    if profile == Subscription.Profile.CAPILLARY:
        return capillary_body(event, subscription)
    return envelope(event, subscription.id)


def build_notice(
    *, event: Event, url: str, secret: str, now: datetime
) -> OutboundRequest:
    """An operational notification (pipeline/notifications.py) in the Standard
    Webhooks shape: `{"type", "timestamp", "data"}`, webhook-id the event id."""
    body = json.dumps(
        {
            "type": event.type,
            "timestamp": iso_z(event.occurred_at),
            "data": event.payload,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    msg_id = str(event.id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Event": event.type,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signing.signature_header(
            msg_id=msg_id, timestamp=now, body=body, secrets=[secret]
        ),
    }
    return OutboundRequest(url=url, body=body.encode(), headers=headers, oauth2=None)


def build_request(
    *, event: Event, subscription: Subscription, now: datetime
) -> OutboundRequest:
    """Body serialised once; signed for this attempt's timestamp.

    webhook-id is the event id, the same on every retry, so receivers can
    deduplicate; custom headers cannot override the ones set here. Every
    profile carries the Standard Webhooks headers (a receiver of another
    format ignores them); raas adds its own signature and event headers.
    """
    body = json.dumps(
        body_of(event=event, subscription=subscription, now=now),
        ensure_ascii=False,
        separators=(",", ":"),
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
    encoded = body.encode()
    if subscription.profile == Subscription.Profile.RAAS:
        # Seed 002: "HEADER x-raas-webhook-signature d2b730bb…
        # x-raas-event : transaction_completed". One hex value has no room for
        # a second secret: it is always signed with the current one.
        own["x-raas-webhook-signature"] = signing.raas_signature(
            body=encoded, secret=subscription.secret
        )
        own["x-raas-event"] = event.type
    oauth2 = oauth2_config(subscription)
    # Also a header a webhook stored before the reserved list grew still
    # carries: never sent (subscriptions/headers.py), nor one that would
    # shadow a header set here or the OAuth2 token.
    own_names = {name.lower() for name in own} | (
        {"authorization"} if oauth2 else set()
    )
    headers = {
        header["key"]: header["value"]
        for header in subscription.headers or []
        if header["key"].lower() not in own_names and not is_reserved(header["key"])
    }
    headers.update(own)
    return OutboundRequest(
        url=subscription.url, body=encoded, headers=headers, oauth2=oauth2
    )
