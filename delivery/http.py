"""The one module that makes outbound HTTP requests.

`send()` never raises: every outcome, including timeouts, refused connections
and blocked destinations, comes back as a SendResult for the retry policy to
classify. Redirects are never followed; the response body is read only up to
the excerpt cap.
"""

import time
from dataclasses import dataclass, field

import requests
from django.conf import settings

from delivery.ssrf import BlockedDestination, validate_destination


@dataclass(frozen=True)
class OAuth2Config:
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


_session: requests.Session | None = None


def _get_session() -> requests.Session:
    global _session
    if _session is None:
        session = requests.Session()
        # Proxies and netrc from the environment must not redirect webhooks.
        session.trust_env = False
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=100, pool_maxsize=settings.WEBHOOK_HTTP_CONCURRENCY
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        _session = session
    return _session


def send(request: OutboundRequest) -> SendResult:
    """POST request.body to request.url. Never raises."""
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        validate_destination(request.url)
    except BlockedDestination as exc:
        return SendResult(None, elapsed_ms(), error=f"blocked destination: {exc}")
    timeout = (
        settings.WEBHOOK_CONNECT_TIMEOUT.total_seconds(),
        settings.WEBHOOK_TIMEOUT.total_seconds(),
    )
    try:
        with _get_session().post(
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            excerpt = _read_excerpt(response)
            return SendResult(
                response.status_code,
                elapsed_ms(),
                response_excerpt=excerpt,
                retry_after=response.headers.get("Retry-After"),
            )
    except requests.exceptions.ConnectTimeout:
        return SendResult(
            None, elapsed_ms(), error=f"timeout: no connection in {timeout[0]} s"
        )
    except requests.exceptions.Timeout:
        return SendResult(
            None, elapsed_ms(), error=f"timeout: no response in {timeout[1]} s"
        )
    except requests.exceptions.SSLError as exc:
        return SendResult(None, elapsed_ms(), error=f"tls: {exc.__class__.__name__}")
    except requests.exceptions.ConnectionError as exc:
        return SendResult(None, elapsed_ms(), error=f"connection error: {_short(exc)}")
    except requests.exceptions.RequestException as exc:
        return SendResult(None, elapsed_ms(), error=f"request error: {_short(exc)}")


def _read_excerpt(response: requests.Response) -> str:
    cap = settings.WEBHOOK_RESPONSE_EXCERPT_BYTES
    chunk = response.raw.read(cap, decode_content=True) or b""
    return chunk[:cap].decode("utf-8", errors="replace")


def _short(exc: Exception) -> str:
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    return text[:200]
