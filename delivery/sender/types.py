"""What the sender takes and returns: plain values, no sockets.

The policy and pipeline packages use these without importing the code that
makes requests (delivery.sender.http).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OAuth2Config:
    """A receiver's OAuth2 client-credentials settings (the webhook's
    `configuration.oauth2`)."""

    token_url: str
    client_id: str
    client_secret: str
    audience: str = ""
    scope: str = ""


@dataclass(frozen=True)
class OutboundRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    oauth2: OAuth2Config | None = None


@dataclass(frozen=True)
class SendResult:
    """What happened. status_code is None when there was no HTTP answer."""

    status_code: int | None
    duration_ms: int
    response_excerpt: str | None = None
    error: str | None = None
    # The raw Retry-After header of a 429/503, for the retry policy.
    retry_after: str | None = None
    # No answer, and the destination (or the network to it) is why: refused,
    # reset, timed out, TLS. False for failures of our own making (a request
    # that cannot be encoded, a blocked destination, a name that does not
    # resolve, an OAuth2 token endpoint): the circuit breaker, shared by every
    # tenant of a destination, must not be charged with those.
    transport_failure: bool = False
