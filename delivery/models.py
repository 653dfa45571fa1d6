import uuid

from django.db import models
from django.db.models import Q


class Delivery(models.Model):
    """One (event, subscription) pair. Its row is the truth about what happens next.

    Due work is `status='pending' AND next_attempt_at <= now`. Claiming a row
    moves next_attempt_at forward by the lease and sets lease_token, so a row
    whose worker died becomes due again by itself once the lease runs out.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        HELD = "held", "held"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        EXPIRED = "expired", "expired"
        CANCELLED = "cancelled", "cancelled"

    class Kind(models.TextChoices):
        EVENT = "event", "event"
        TEST = "test", "test"
        # Operational notifications (delivery/notifications.py): to the
        # operator's WEBHOOK_OPERATIONAL_URL, or to the client's notification_url.
        OPERATOR = "operator", "operator notification"
        NOTICE = "notice", "client notification"

    NOTIFICATIONS = (Kind.OPERATOR, Kind.NOTICE)

    # Not finished: it may still be sent (pending) or will be once resumed (held).
    UNFINISHED = (Status.PENDING, Status.HELD)
    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.EXPIRED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    event = models.ForeignKey(
        "events.Event", on_delete=models.CASCADE, related_name="deliveries"
    )
    # Kept (NULL) when the subscription is deleted so the event log survives.
    # No index of its own: delivery_sub_created leads with it, and every
    # index is one more write per insert and per claim.
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deliveries",
        db_index=False,
    )
    # The subscription's owner, denormalised: tenant isolation without a join.
    client = models.ForeignKey(
        "subscriptions.Client", on_delete=models.CASCADE, related_name="deliveries"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EVENT)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING
    )
    attempts_count = models.PositiveIntegerField(default=0)
    # Index into the backoff table; skipped (breaker) attempts do not advance it.
    backoff_step = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.UUIDField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at"]
        indexes = [
            # Claim and dispatch_due: due pending rows, oldest first.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_due",
            ),
            # Fair claiming: each tenant's pending rows, oldest due first (the
            # claim visits the tenants with pending work, then each one's head).
            models.Index(
                fields=["client", "next_attempt_at"],
                condition=Q(status="pending"),
                name="delivery_client_due",
            ),
            # GET /webhooks/{id}/deliveries: newest first, cursor on (created_at, id).
            models.Index(
                fields=["subscription", "-created_at", "-id"],
                name="delivery_sub_created",
            ),
            # The expiry sweep: unfinished rows past their TTL.
            models.Index(
                fields=["expires_at"],
                condition=Q(status__in=["pending", "held"]),
                name="delivery_unfinished_expiry",
            ),
            # Pause and resume: a subscription's pending or held rows.
            models.Index(
                fields=["subscription", "status"],
                condition=Q(status__in=["pending", "held"]),
                name="delivery_sub_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery {self.id} ({self.status})"


class Attempt(models.Model):
    """One HTTP request made (or skipped) for a delivery."""

    class Outcome(models.TextChoices):
        ACK = "ack", "ack"
        CONFLICT_RETRY = "conflict_retry", "conflict retry"
        RETRY = "retry", "retry"
        FAILURE = "failure", "failure"
        PERMANENT_FAILURE = "permanent_failure", "permanent failure"
        SKIPPED = "skipped", "skipped"

    # What an attempt records (admin, API and the worker's INSERT show the same).
    RECORDED = (
        "number",
        "at",
        "duration_ms",
        "status_code",
        "outcome",
        "error",
        "response_excerpt",
    )

    # No index of its own: attempt_delivery_number leads with it.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempts", db_index=False
    )
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    error = models.TextField(null=True, blank=True)
    response_excerpt = models.TextField(null=True, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        indexes = [
            # A delivery's attempts in order (delivery detail).
            models.Index(fields=["delivery", "number"], name="attempt_delivery_number"),
            # Pruning attempts older than WEBHOOK_RETENTION (delivery/retention.py).
            models.Index(fields=["at"], name="attempt_at"),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"


class Breaker(models.Model):
    """Circuit breaker state of one destination (scheme://host:port)."""

    destination = models.CharField(max_length=300, unique=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # While in the future, attempts to this destination are skipped.
    open_until = models.DateTimeField(null=True, blank=True)
    # The destination answered 429/503 with Retry-After: until then its due
    # deliveries are postponed without a request (policy/breaker.py).
    backpressure_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["destination"]

    def __str__(self) -> str:
        return self.destination
