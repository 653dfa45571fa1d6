from django.db import models


class Parcel(models.Model):
    """What the peer's publisher publishes: one row per event."""

    type = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=128, blank=True)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} {self.resource_id}"
