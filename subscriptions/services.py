"""Writes on clients, API keys and subscriptions.

The only code that writes Subscription.status: the API, the admin, the
worker (a webhook paused after consecutive failures, a trackingId webhook
ended by its terminal event) and beat (lapsed webhooks) all come here.
"""

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from delivery import services as delivery_services
from delivery.sender.signing import new_secret
from delivery.sender.types import OAuth2Config
from subscriptions import selectors
from subscriptions.auth import KEY_PREFIX, hash_key, live_keys
from subscriptions.models import ApiKey, Client, Subscription, SubscriptionFilter

_LIVE = [Subscription.Status.ACTIVE, *Subscription.HOLDING]
# Seed 001: "This retry strategy continues for at least 7 days."
CAPILLARY_DELIVERY_TTL = timedelta(days=7)


@transaction.atomic
def create_api_key(
    *,
    client_name: str,
    scopes: Iterable[str],
    name: str = "",
    tenants: Iterable[str] = (),
) -> tuple[ApiKey, str]:
    """Create a key for the client (creating the client if needed), bound to
    the named `tenants` if any: a publish key that may publish only their
    tenant events (none: any tenant).

    Returns the ApiKey row and the plaintext key, which is not stored and
    cannot be shown again. Raises ValueError for an unknown scope, an
    unknown tenant, or tenants for a key without the publish scope.
    """
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ApiKey.Scope.values)
    if unknown or not scopes:
        raise ValueError(f"scopes must be among {ApiKey.Scope.values}, got {scopes}")
    tenant_names = set(tenants)
    bound = list(Client.objects.filter(name__in=tenant_names))
    if missing := tenant_names - {tenant.name for tenant in bound}:
        raise ValueError(f"no tenant named {', '.join(sorted(missing))}")
    if bound and ApiKey.Scope.PUBLISH not in scopes:
        raise ValueError("only a key with the publish scope is bound to tenants")
    client, _ = Client.objects.get_or_create(name=client_name)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        client=client,
        name=name,
        prefix=key[:12],
        key_hash=hash_key(key),
        scopes=scopes,
    )
    api_key.tenants.set(bound)
    return api_key, key


def revoke_api_key(*, api_key: ApiKey) -> None:
    """Revoke the key; idempotent. It stops working at once in this process
    and within WEBHOOK_LOOKUP_CACHE_TTL in every other."""
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    live_keys.discard(api_key.key_hash)
    # Again once committed: a request in between may have cached it anew.
    transaction.on_commit(lambda: live_keys.discard(api_key.key_hash))


# --- subscriptions ------------------------------------------------------------


@dataclass(frozen=True)
class WebhookConfig:
    """A validated webhook configuration (the serializers check the limits)."""

    url: str
    event_groups: Sequence[str]
    content_type: str = "application/json"
    headers: Sequence[Mapping[str, str]] = field(default_factory=tuple)
    oauth2: OAuth2Config | None = None
    profile: str = Subscription.Profile.STANDARD
    # None: the deployment's WEBHOOK_DELIVERY_TTL (capillary: 7 days).
    delivery_ttl: timedelta | None = None
    # `10/s`, `600/m`; "" for none.
    rate_limit: str = ""


def _delivery_ttl(config: WebhookConfig) -> timedelta | None:
    """What the webhook stores: its own TTL, capillary's 7 days (never above
    the operator's WEBHOOK_MAX_DELIVERY_TTL), or None to follow the
    deployment's WEBHOOK_DELIVERY_TTL."""
    if config.delivery_ttl is not None:
        return config.delivery_ttl
    if config.profile == Subscription.Profile.CAPILLARY:
        return min(CAPILLARY_DELIVERY_TTL, settings.WEBHOOK_MAX_DELIVERY_TTL)
    return None


def config_from_request(data: Mapping[str, Any]) -> WebhookConfig:
    """The configuration of a validated create request (WebhookCreateSerializer
    or WebhookBatchCreateSerializer), as the API and the portal send it."""
    configuration = data["configuration"]
    oauth2 = configuration.get("oauth2")
    return WebhookConfig(
        url=configuration["url"],
        event_groups=data["event_groups"],
        content_type=configuration.get("content_type") or "application/json",
        headers=configuration.get("headers") or (),
        oauth2=OAuth2Config(
            token_url=oauth2["token_url"],
            client_id=oauth2["client_id"],
            client_secret=oauth2["client_secret"],
            audience=oauth2.get("audience") or "",
            scope=oauth2.get("scope") or "",
        )
        if oauth2
        else None,
        profile=configuration.get("profile") or Subscription.Profile.STANDARD,
        delivery_ttl=configuration.get("delivery_ttl"),
        rate_limit=configuration.get("rate_limit") or "",
    )


class DuplicateSubscription(Exception):
    """A live identical subscription exists; `tracking_ids` names which."""

    def __init__(self, tracking_ids: Sequence[str | None]) -> None:
        self.tracking_ids = list(tracking_ids)
        super().__init__(f"duplicate subscriptions for {self.tracking_ids}")

    @property
    def message(self) -> str:
        """The 409's reason, for the client (API and portal alike)."""
        named = [tid for tid in self.tracking_ids if tid is not None]
        if not named:
            return "An identical webhook already exists."
        return f"An identical webhook already exists for trackingId {', '.join(named)}."


class WebhookQuotaExceeded(Exception):
    """The client would have more live webhooks than
    WEBHOOK_MAX_WEBHOOKS_PER_CLIENT allows."""

    def __init__(self, *, live: int, requested: int, quota: int) -> None:
        self.live, self.requested, self.quota = live, requested, quota
        super().__init__(f"{live} live + {requested} new > {quota}")

    @property
    def message(self) -> str:
        """The 409's reason, for the client (API and portal alike)."""
        return (
            f"Webhook quota exceeded: this client has {self.live} live webhooks, "
            f"{self.requested} more would pass its quota of {self.quota} "
            f"(WEBHOOK_MAX_WEBHOOKS_PER_CLIENT); delete some first."
        )


class SubscriptionNotPaused(Exception):
    """Only a paused or disabled subscription can be resumed."""


def credentials_digest(
    *,
    headers: Iterable[Mapping[str, str]],
    oauth2: OAuth2Config | None,
    profile: str,
) -> str:
    """sha256 over a canonical JSON of what authenticates the requests: the
    custom headers (names lower-cased, as HTTP compares them, in any order),
    the OAuth2 settings with their client secret, and the profile.

    Part of the fingerprint so that a webhook whose credentials are being
    replaced can live next to its successor until the receiver accepts the
    new ones; only this digest reaches the stored fingerprint, never a value.
    """
    canonical = {
        "headers": sorted([h["key"].lower(), h["value"]] for h in headers),
        "oauth2": [
            oauth2.token_url,
            oauth2.client_id,
            oauth2.client_secret,
            oauth2.audience or "",
            oauth2.scope or "",
        ]
        if oauth2
        else None,
        "profile": profile,
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(
    *,
    url: str,
    tracking_id: str | None,
    event_groups: Iterable[str],
    credentials: str = "",
) -> str:
    """What "identical" means for the 409: url, trackingId, the set of groups
    and the credentials_digest() of the configuration."""
    identity = [url, tracking_id or "", sorted(set(event_groups)), credentials]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


def _filters_for(subscription: Subscription) -> list[SubscriptionFilter]:
    filters = []
    for group in subscription.event_groups:
        event_type, _, subtype = group.partition(":")
        filters.append(
            SubscriptionFilter(
                subscription=subscription, event_type=event_type, subtype=subtype
            )
        )
    return filters


def _check_quota(*, client: Client, requested: int, now: datetime) -> None:
    """Raise WebhookQuotaExceeded unless `requested` more live webhooks fit.

    First in the create's transaction: the client's row is locked (FOR NO
    KEY UPDATE, which does not block the KEY SHARE locks of inserts that
    reference the client, such as publishing), so two concurrent creates of
    one client count one after the other and cannot both take the last slot.
    """
    Client.objects.select_for_update(no_key=True).filter(pk=client.pk).first()
    quota = settings.WEBHOOK_MAX_WEBHOOKS_PER_CLIENT
    live = selectors.count_live_subscriptions(client=client, now=now)
    if live + requested > quota:
        raise WebhookQuotaExceeded(live=live, requested=requested, quota=quota)


def _create(
    *, client: Client, config: WebhookConfig, tracking_ids: Sequence[str | None]
) -> list[Subscription]:
    now = timezone.now()
    groups = list(dict.fromkeys(config.event_groups))
    credentials = credentials_digest(
        headers=config.headers, oauth2=config.oauth2, profile=config.profile
    )
    identities = {
        fingerprint(
            url=config.url,
            tracking_id=tid,
            event_groups=groups,
            credentials=credentials,
        ): tid
        for tid in tracking_ids
    }

    def duplicates() -> list[str | None]:
        taken = selectors.live_duplicates(
            client=client, fingerprints=identities.keys(), now=now
        ).values_list("fingerprint", flat=True)
        return sorted((identities[fp] for fp in set(taken)), key=lambda t: t or "")

    oauth2 = config.oauth2
    delivery_ttl = _delivery_ttl(config)
    subscriptions = [
        Subscription(
            client=client,
            url=config.url,
            content_type=config.content_type,
            headers=[{"key": h["key"], "value": h["value"]} for h in config.headers]
            or None,
            header_names=[h["key"] for h in config.headers],
            tracking_id=tid,
            event_groups=groups,
            fingerprint=fp,
            oauth2_token_url=oauth2.token_url if oauth2 else "",
            oauth2_client_id=oauth2.client_id if oauth2 else "",
            oauth2_client_secret=oauth2.client_secret if oauth2 else "",
            oauth2_audience=oauth2.audience if oauth2 else "",
            oauth2_scope=oauth2.scope if oauth2 else "",
            profile=config.profile,
            delivery_ttl=delivery_ttl,
            rate_limit=config.rate_limit,
            secret=new_secret(),
            created_at=now,
            expires_at=now + settings.WEBHOOK_SUBSCRIPTION_TTL,
        )
        for fp, tid in identities.items()
    ]
    try:
        with transaction.atomic():
            _check_quota(client=client, requested=len(subscriptions), now=now)
            # A lapsed row the sweep has not marked yet must not block its
            # successor through the partial unique constraint.
            Subscription.objects.filter(
                client=client,
                fingerprint__in=list(identities),
                status__in=_LIVE,
                expires_at__lte=now,
            ).update(status=Subscription.Status.EXPIRED)
            if taken := duplicates():
                raise DuplicateSubscription(taken)
            Subscription.objects.bulk_create(subscriptions, batch_size=1000)
            SubscriptionFilter.objects.bulk_create(
                [f for sub in subscriptions for f in _filters_for(sub)],
                batch_size=2000,
            )
    except IntegrityError:
        # A concurrent identical create won the race past our check.
        if taken := duplicates():
            raise DuplicateSubscription(taken)
        raise
    return subscriptions


def create_subscription(
    *, client: Client, config: WebhookConfig, tracking_id: str | None = None
) -> Subscription:
    """Create one subscription (with its routing filters and a new signing secret).

    The returned object carries the plaintext `secret`, to be shown once.
    Raises DuplicateSubscription if an identical one is live (also when a
    concurrent request created it first), WebhookQuotaExceeded if the client
    has WEBHOOK_MAX_WEBHOOKS_PER_CLIENT live ones. Writes nothing on failure.
    """
    return _create(client=client, config=config, tracking_ids=[tracking_id])[0]


def create_subscriptions_batch(
    *, client: Client, config: WebhookConfig, tracking_ids: Sequence[str]
) -> list[Subscription]:
    """Create one subscription per tracking id, all or none, in one transaction.

    `tracking_ids` must be distinct. Raises DuplicateSubscription naming the
    tracking ids that already have a live identical subscription, and
    WebhookQuotaExceeded if they do not all fit in the client's quota.
    """
    return _create(client=client, config=config, tracking_ids=tracking_ids)


@transaction.atomic
def delete_subscription(*, subscription: Subscription) -> None:
    """Cancel the subscription's pending and held deliveries, then delete it.

    Finished deliveries stay (without their subscription) for the event log.
    Idempotent.
    """
    delivery_services.cancel_unfinished_deliveries(subscription_id=subscription.pk)
    Subscription.objects.filter(pk=subscription.pk).delete()


@transaction.atomic
def resume_subscription(*, subscription: Subscription) -> Subscription:
    """Reactivate a paused or disabled subscription and release its held
    deliveries.

    Resets the consecutive-failure count. Returns the refreshed subscription.
    Raises SubscriptionNotPaused unless it is paused or disabled (and not lapsed).
    """
    locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
    now = timezone.now()
    if selectors.effective_status(locked, now=now) not in Subscription.HOLDING:
        raise SubscriptionNotPaused()
    previous = locked.status
    locked.status = Subscription.Status.ACTIVE
    locked.paused_reason = ""
    locked.paused_at = None
    locked.consecutive_failures = 0
    locked.save(
        update_fields=[
            "status",
            "paused_reason",
            "paused_at",
            "consecutive_failures",
            "updated_at",
        ]
    )
    delivery_services.release_held_deliveries(subscription_id=locked.pk)
    delivery_services.notify(
        [
            delivery_services.Notice(
                type="webhook.recovered",
                webhook_id=locked.pk,
                client_id=locked.client_id,
                reason=f"resumed (it was {previous})",
            )
        ]
    )
    return locked


def pause_subscription(
    *, subscription: Subscription, reason: str, last_status_code: int | None = None
) -> bool:
    """Pause an active subscription; its pending deliveries are held, and
    `webhook.paused` is notified.

    Called by operators (admin) and by the worker when a webhook reaches
    WEBHOOK_PAUSE_AFTER_FAILURES consecutive failures (inside its flush).
    Returns False, changing nothing, if it is not active (paused, disabled,
    expired, or past its expires_at).
    """
    return _hold(subscription, Subscription.Status.PAUSED, reason, last_status_code)


def disable_subscription(
    *, subscription: Subscription, reason: str, last_status_code: int | None = None
) -> bool:
    """Disable an active subscription whose receiver answered 410 Gone: its
    pending deliveries are held, as when paused, until it is resumed, and
    `webhook.disabled` is notified. Returns False, changing nothing, if it is
    not active."""
    return _hold(subscription, Subscription.Status.DISABLED, reason, last_status_code)


_NOTICE_OF = {
    Subscription.Status.PAUSED: "webhook.paused",
    Subscription.Status.DISABLED: "webhook.disabled",
}


@transaction.atomic
def _hold(
    subscription: Subscription, status: str, reason: str, last_status_code: int | None
) -> bool:
    now = timezone.now()
    held = Subscription.objects.filter(
        pk=subscription.pk,
        status=Subscription.Status.ACTIVE,
        expires_at__gt=now,
    ).update(status=status, paused_reason=reason[:200], paused_at=now, updated_at=now)
    if held:
        delivery_services.hold_pending_deliveries(subscription_id=subscription.pk)
        delivery_services.notify(
            [
                delivery_services.Notice(
                    type=_NOTICE_OF[status],
                    webhook_id=subscription.pk,
                    client_id=subscription.client_id,
                    reason=reason,
                    last_status_code=last_status_code,
                )
            ]
        )
    return bool(held)


def set_notification_url(*, client: Client, url: str | None) -> str | None:
    """Send the client's operational notifications to `url` (None: nowhere),
    signed with a new secret, which is returned (shown once); None when
    cleared. Notifications already written go to the URL set when sent."""
    secret = new_secret() if url else ""
    Client.objects.filter(pk=client.pk).update(
        notification_url=url or "", notification_secret=secret
    )
    return secret or None


@transaction.atomic
def rotate_secret(*, subscription: Subscription) -> str:
    """Give the subscription a new signing secret and return it (shown once).

    The old one stays valid (requests carry both signatures) for
    WEBHOOK_SECRET_ROTATION_OVERLAP. Rotating again within the overlap drops
    the oldest secret.
    """
    locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
    secret = new_secret()
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = (
        timezone.now() + settings.WEBHOOK_SECRET_ROTATION_OVERLAP
    )
    locked.secret = secret
    locked.save(
        update_fields=[
            "secret",
            "previous_secret",
            "previous_secret_expires_at",
            "updated_at",
        ]
    )
    return secret


def expire_lapsed_subscriptions(*, now: datetime | None = None) -> int:
    """Mark live (active and paused) subscriptions past their expiry as
    expired; return how many.

    For beat's sweep (delivery.tasks.expire_deliveries); idempotent. Reads
    already treat them as expired. Their unfinished deliveries are left to
    finish within their own TTL: the events happened while the subscription
    was live.
    """
    lapsed = Subscription.objects.filter(
        status__in=_LIVE, expires_at__lte=now or timezone.now()
    )
    with transaction.atomic():
        # Locked, so each lapsed webhook is expired (and notified) by one sweep.
        rows = list(
            lapsed.select_for_update(skip_locked=True).values_list("id", "client_id")
        )
        expired = lapsed.filter(id__in=[sid for sid, _ in rows]).update(
            status=Subscription.Status.EXPIRED, updated_at=timezone.now()
        )
        delivery_services.notify(
            delivery_services.Notice(
                type="webhook.expired",
                webhook_id=sid,
                client_id=client_id,
                reason="its expiry passed",
            )
            for sid, client_id in rows
        )
    return expired


def end_tracking_subscriptions(
    *,
    subscription_ids: Iterable[UUID],
    now: datetime | None = None,
    active_only: bool = False,
) -> int:
    """A terminal event (e.g. DELIVERED) ends the trackingId subscriptions
    that follow its resource: live ones (only active ones with `active_only`)
    become expired. Returns how many.

    Publishing ends the active ones it reaches as the event is published
    (end_tracking_sql() on PostgreSQL, this with active_only elsewhere); the
    worker ends a paused one once it was resumed and acknowledged the event.
    """
    now = now or timezone.now()
    statuses = [Subscription.Status.ACTIVE] if active_only else _LIVE
    return Subscription.objects.filter(
        id__in=list(subscription_ids), status__in=statuses
    ).update(status=Subscription.Status.EXPIRED, updated_at=now)


def end_tracking_sql(
    *, delivered_sql: str, tracking_ids: Sequence[str], now: datetime
) -> tuple[str, list[object]]:
    """end_tracking_subscriptions(active_only=True) as one PostgreSQL UPDATE,
    for publishing to put in the CTE of its INSERTs (no extra round trip):
    `delivered_sql` is a SELECT of subscription_id, the webhooks a terminal
    event about `tracking_ids` (its resources) was just delivered to. Seed
    003: "Webhooks lives for up to 30 days, or until the entity subscribed
    for is marked as 'delivered by Bring'".

    Only active ones: the delivery just created is pending and is still sent
    and retried (nothing in the worker skips an expired webhook's delivery),
    while a paused one's is held, and an expired webhook cannot be resumed.
    Found through the trackingId index first: a fan-out to 10,000 webhooks
    without a trackingId costs nothing here.
    """
    table = f'"{Subscription._meta.db_table}"'
    sql = (
        f"UPDATE {table} SET status = %s, updated_at = %s "
        "WHERE tracking_id = ANY(%s::text[]) AND status = %s "
        f"AND id IN ({delivered_sql})"
    )
    active = Subscription.Status.ACTIVE
    return sql, [Subscription.Status.EXPIRED, now, list(tracking_ids), active]
