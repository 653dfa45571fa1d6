from django.db import models


class PortalSession(models.Model):
    """A portal link and, once opened, the browser session it became.

    Only SHA-256 hashes of the link's token and of the session cookie are
    stored. The link works once (opened_at is set by the one UPDATE that
    accepts it) and until link_expires_at; the session until
    session_expires_at, for its client only.
    """

    client = models.ForeignKey(
        "subscriptions.Client", on_delete=models.CASCADE, related_name="+"
    )
    link_hash = models.CharField(max_length=64, unique=True)
    link_expires_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    session_hash = models.CharField(max_length=64, unique=True, null=True, blank=True)
    session_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # Pruning: a client's links and sessions that ended.
            models.Index(fields=["client", "created_at"], name="portal_client_created")
        ]

    def __str__(self) -> str:
        return f"portal session {self.pk} ({self.client_id})"
