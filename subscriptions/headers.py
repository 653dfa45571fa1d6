"""Which custom header names a webhook may not carry: refused when it is
created (subscriptions/serializers.py) and dropped when a request is sent
(delivery/pipeline/outbound.py), so a webhook stored before this list grew
never sends a header that is reserved now."""

# Refused as custom headers: those the service sets on every request; the
# hop-by-hop and framing ones, which would corrupt or change the request's
# transport (RFC 9110 7.6.1, 9112); and credentials that belong to the
# transport or a proxy, not to the receiver's application.
RESERVED_HEADERS = frozenset(
    {
        # Set by the service.
        "content-type",
        "x-webhook-event",
        # Framing and hop-by-hop.
        "host",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
        "expect",
        # Credentials of the transport or a proxy.
        "cookie",
        "proxy-authorization",
        "proxy-connection",
    }
)
# The Standard Webhooks headers (webhook-id, webhook-signature, …) and any
# the specification may add.
RESERVED_PREFIX = "webhook-"


def is_reserved(name: str) -> bool:
    """Whether `name` (any case) may never be a custom header."""
    lowered = name.lower()
    return lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_PREFIX)
