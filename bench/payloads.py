"""What the bench publishes, and what a delivery of it looks like on the wire.

The bare ceiling and the sink ceiling POST `delivery_request()`: the body and
headers the service sends for one of the bench's events (docs/api.md, "What a
receiver gets"), so the ceilings and the service move the same bytes.
"""

import json
import uuid

EVENT_TYPE = "IN_TRANSIT"  # not terminal: deliveries do not expire trackingId webhooks


def event(
    *, seq: int, resource_id: str | None = None, tenant: str | None = None
) -> dict:
    """A publish body for POST /api/v1/events."""
    body: dict = {
        "type": EVENT_TYPE,
        "payload": {"status": "in transit", "seq": seq, "hub": "bench"},
    }
    if resource_id is not None:
        body["resource_id"] = resource_id
    if tenant is not None:
        body["tenant"] = tenant
    return body


def delivery_request(*, seq: int = 1) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a delivery of event(seq=seq), as the service sends it."""
    event_id = str(uuid.uuid4())
    envelope = {
        "id": event_id,
        "type": EVENT_TYPE,
        "subtype": None,
        "resource_id": f"B{seq % 20}",
        "user_id": None,
        "resource_url": None,
        "subscription_id": str(uuid.uuid4()),
        "payload": {"status": "in transit", "seq": seq, "hub": "bench"},
        "timestamp": "2026-11-22T10:00:00Z",
    }
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "webhooks/1.0.0",
        "X-Webhook-Event": EVENT_TYPE,
        "webhook-id": event_id,
        "webhook-timestamp": "1763805600",
        "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    }
    return json.dumps(envelope).encode(), headers
