import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from subscriptions.fields import EncryptedJSONField, EncryptedTextField


class Client(models.Model):
    """A tenant: owns API keys and subscriptions; publishes or receives events."""

    name = models.CharField(max_length=40, unique=True)
    # Where operational notifications about this client's webhooks go ("" for
    # nowhere), signed with notification_secret (GET/PUT notification-settings).
    notification_url = models.CharField(max_length=250, blank=True)
    notification_secret = EncryptedTextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    # The Client is DRF's request.user: permissions such as IsAuthenticated ask.
    is_authenticated = True


class ApiKey(models.Model):
    """A bearer key of one client. Only its SHA-256 is stored; the key is shown once."""

    class Scope(models.TextChoices):
        SUBSCRIPTIONS = "subscriptions", "subscriptions"
        PUBLISH = "publish", "publish"

    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    # The first characters of the key, so an operator can tell keys apart.
    prefix = models.CharField(max_length=12)
    # Looked up on every request: unique index.
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    # A publish key bound to these tenants publishes only their tenant events
    # (docs/security.md, "Publish keys and tenants"); none: any tenant.
    tenants = models.ManyToManyField(
        Client,
        blank=True,
        related_name="bound_publish_keys",
        help_text="Publishing: only tenant events of these tenants. Empty: any.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.client})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def bound_tenant_ids(self) -> frozenset[int] | None:
        """The ids of the tenants this key may publish into; None: any. (The
        authentication's cached key has them prefetched: no query.)"""
        prefetched = getattr(self, "_prefetched_objects_cache", {}).get("tenants")
        if prefetched is not None:
            # Read as prefetched, without a related manager per call (a
            # publish asks once per request: 3% of the web process's CPU).
            return frozenset(tenant.pk for tenant in prefetched) or None
        return frozenset(tenant.pk for tenant in self.tenants.all()) or None


class Subscription(models.Model):
    """A client's endpoint and the events it wants. Configuration is immutable."""

    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        PAUSED = "paused", "paused"
        EXPIRED = "expired", "expired"
        # The receiver answered 410 Gone: held like paused until resumed.
        DISABLED = "disabled", "disabled"

    class Profile(models.TextChoices):
        """The receiver's wire format: headers, signature scheme and body shape
        (docs/api.md, "Profiles")."""

        STANDARD = "standard", "standard"
        RAAS = "raas", "raas"
        CAPILLARY = "capillary", "capillary"

    # Statuses whose deliveries are held (not sent) until the webhook is resumed.
    HOLDING = (Status.PAUSED, Status.DISABLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, related_name="subscriptions"
    )
    url = models.CharField(max_length=250)
    content_type = models.CharField(max_length=40, default="application/json")
    # [{"key": ..., "value": ...}]; values are write-only, so the list is encrypted.
    headers = EncryptedJSONField(null=True, blank=True)
    # The keys of `headers`, in their order: what the API and the admin show,
    # in the clear so that showing a webhook decrypts nothing.
    header_names = models.JSONField(default=list, blank=True)
    tracking_id = models.CharField(max_length=128, null=True, blank=True)
    event_groups = models.JSONField(default=list)
    # sha256 of (url, tracking_id, sorted event_groups): what "identical" means.
    fingerprint = models.CharField(max_length=64)
    profile = models.CharField(
        max_length=16, choices=Profile.choices, default=Profile.STANDARD
    )
    # How long each delivery may be retried. Null: the deployment's
    # WEBHOOK_DELIVERY_TTL at the time the delivery is created, so a webhook
    # that asked for nothing follows the operator's setting.
    delivery_ttl = models.DurationField(null=True, blank=True)
    # `10/s` or `600/m` (webhooks_project.conf.parse_rate); "" for none.
    rate_limit = models.CharField(max_length=16, blank=True, default="")

    oauth2_token_url = models.CharField(max_length=250, blank=True)
    oauth2_client_id = models.CharField(max_length=255, blank=True)
    oauth2_client_secret = EncryptedTextField(blank=True)
    oauth2_audience = models.CharField(max_length=255, blank=True)
    oauth2_scope = models.CharField(max_length=255, blank=True)

    secret = EncryptedTextField()
    # After a rotation requests carry both signatures until this time.
    previous_secret = EncryptedTextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    paused_reason = models.CharField(max_length=200, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The 409 rule: one live (active or paused) subscription per identity.
            models.UniqueConstraint(
                fields=["client", "fingerprint"],
                condition=~Q(status="expired"),
                name="subscription_unique_live_fingerprint",
            ),
        ]
        indexes = [
            # GET /api/v1/webhooks: a client's subscriptions, newest first.
            models.Index(
                fields=["client", "-created_at"], name="subscription_client_created"
            ),
            # Public events: subscriptions naming the event's resource id.
            models.Index(
                fields=["tracking_id"],
                condition=Q(tracking_id__isnull=False),
                name="subscription_tracking_id",
            ),
            # The expiry sweep: live subscriptions past expires_at.
            models.Index(
                fields=["status", "expires_at"], name="subscription_status_expiry"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client} → {self.url}"

    @property
    def has_oauth2(self) -> bool:
        return bool(self.oauth2_token_url)

    @property
    def effective_delivery_ttl(self) -> timedelta:
        """The TTL a delivery created now gets."""
        return self.delivery_ttl or settings.WEBHOOK_DELIVERY_TTL


class SubscriptionFilter(models.Model):
    """One entry of a subscription's event_groups, normalised so routing is a join."""

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="filters"
    )
    event_type = models.CharField(max_length=64)
    # "" matches every subtype of event_type.
    subtype = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "event_type", "subtype"],
                name="filter_unique_entry",
            )
        ]
        indexes = [
            # Fan-out: subscriptions listening to (type, subtype or all).
            models.Index(fields=["event_type", "subtype"], name="filter_type_subtype"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type}:{self.subtype}" if self.subtype else self.event_type
