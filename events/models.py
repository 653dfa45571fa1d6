import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class EventType(models.Model):
    """The catalogue of event types clients may subscribe to."""

    name = models.CharField(max_length=64, unique=True)
    subtypes = models.JSONField(default=list, blank=True)
    # Once delivered, a terminal event ends trackingId subscriptions on its resource.
    terminal = models.BooleanField(default=False)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    """Something that happened: published once, delivered to every matching webhook."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    publisher = models.ForeignKey(
        "subscriptions.Client",
        on_delete=models.PROTECT,
        related_name="published_events",
    )
    # The publisher's own `id` or Idempotency-Key: a second publish is a no-op.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    # None: a public event, delivered only to subscriptions tracking resource_id.
    tenant = models.ForeignKey(
        "subscriptions.Client",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="events",
    )
    type = models.CharField(max_length=64)
    subtype = models.CharField(max_length=64, null=True, blank=True)
    resource_id = models.CharField(max_length=128, null=True, blank=True)
    resource_url = models.CharField(max_length=500, null=True, blank=True)
    user_id = models.CharField(max_length=128, null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["publisher", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="event_unique_idempotency_key",
            )
        ]
        indexes = [
            # Admin search and the terminal-event sweep: events about one resource.
            models.Index(fields=["resource_id"], name="event_resource_id"),
            # GET /api/v1/events/{id} by the publisher's own id, by any caller
            # (the unique constraint leads with publisher_id).
            models.Index(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="event_idempotency_key",
            ),
            # Admin list, newest first.
            models.Index(fields=["-created_at"], name="event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"
