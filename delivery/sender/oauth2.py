"""OAuth2 client credentials for receivers that want a bearer token.

Tokens come from the subscription's token_url (requests-oauthlib's
BackendApplicationClient + OAuth2Session.fetch_token) and are kept in Django's
default cache (Redis in production, so every worker process reuses them) until
shortly before they expire. The transport is the caller's: `delivery.sender.http`
passes a session whose adapter applies the SSRF guard and its deadline, and
formats transport failures itself. This module raises TokenError for answers
that are not a usable token.
"""

import hashlib
import hmac
import logging
import threading
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error
from requests_oauthlib import OAuth2Session

from delivery.sender.types import OAuth2Config
from webhooks_project import crypto

# requests-oauthlib logs token request bodies (client secrets) and token
# responses at DEBUG; secrets never go to logs, whatever LOG_LEVEL says.
for _name in ("requests_oauthlib", "oauthlib"):
    logging.getLogger(_name).setLevel(logging.WARNING)
log = logging.getLogger(__name__)

# A token is dropped from the cache this long before it expires (at most a
# tenth of its lifetime), so a request never leaves with an expiring token.
EXPIRY_MARGIN_SECONDS = 60
# Used when the token endpoint does not say how long the token lives.
DEFAULT_LIFETIME_SECONDS = 300
# A token response is a small JSON object; a larger one is refused unread.
MAX_TOKEN_RESPONSE_BYTES = 64 * 1024


class TokenError(Exception):
    """The token endpoint answered, but not with a usable token.

    str(exc) is short and never contains the secret or the endpoint's body.
    """


def cache_key(config: OAuth2Config) -> str:
    """Where the token for config is cached.

    An HMAC (keyed with SECRET_KEY) of every field including the client
    secret: a subscription that names another tenant's token_url and
    client_id with a wrong secret must not be handed that tenant's token, and
    the key must not reveal the secret (nor let it be guessed offline).
    """
    material = "\x1f".join(
        (
            config.token_url,
            config.client_id,
            config.audience,
            config.scope,
            config.client_secret,
        )
    )
    digest = hmac.new(
        settings.SECRET_KEY.encode(), material.encode(), hashlib.sha256
    ).hexdigest()
    return f"webhooks:oauth2-token:{digest}"


_locks_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}


def _lock_for(key: str) -> threading.Lock:
    # One fetch per token per process at a time: the threads of a worker that
    # all find the cache empty wait for the first fetch instead of stampeding.
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def access_token(
    config: OAuth2Config,
    *,
    adapter: requests.adapters.BaseAdapter,
    timeout: tuple[float, float],
    verify: bool | str,
    rejected: str | None = None,
) -> str:
    """A bearer token for config, from the cache or freshly fetched.

    rejected is a token the receiver just refused (401): it is not returned
    again, a fresh one is fetched (unless another thread already replaced
    it). adapter is the transport to fetch with (the caller's guarded one).
    Raises TokenError for an unusable answer; transport failures (requests
    exceptions, BlockedDestination) propagate.
    """
    key = cache_key(config)
    cached = _cached(key)
    if cached is not None and cached != rejected:
        return cached
    with _lock_for(key):
        cached = _cached(key)
        if cached is not None and cached != rejected:
            return cached
        token, lifetime = _fetch(
            config, adapter=adapter, timeout=timeout, verify=verify
        )
        ttl = lifetime - min(EXPIRY_MARGIN_SECONDS, lifetime // 10)
        _store(key, token, ttl)
        return token


# The cache only saves token requests: if it is unreachable, fetch anyway.
def _cached(key: str) -> str | None:
    try:
        stored = cache.get(key)
    except Exception:
        log.warning("oauth2 token cache unavailable", exc_info=True)
        return None
    if not stored:
        return None
    try:
        # Encrypted so bearer tokens do not sit in Redis in clear.
        return crypto.decrypt(stored)
    except crypto.DecryptionError:
        # Written under an encryption key that has since been removed.
        return None


def _store(key: str, token: str, ttl: int) -> None:
    try:
        if ttl > 0:
            cache.set(key, crypto.encrypt(token), timeout=ttl)
        else:
            cache.delete(key)
    except Exception:
        log.warning("oauth2 token cache unavailable", exc_info=True)


def _fetch(
    config: OAuth2Config,
    *,
    adapter: requests.adapters.BaseAdapter,
    timeout: tuple[float, float],
    verify: bool | str,
) -> tuple[str, int]:
    """(access_token, lifetime in seconds) from the token endpoint."""
    client = BackendApplicationClient(
        client_id=config.client_id, scope=config.scope or None
    )
    oauth = OAuth2Session(client=client)
    # Neither proxies nor netrc from the environment; the guarded transport
    # for both schemes (a fresh session, so no cookies shared between tenants).
    oauth.trust_env = False
    oauth.mount("http://", adapter)
    oauth.mount("https://", adapter)

    def no_redirects(url: str, headers: dict, request_kwargs: dict) -> tuple:
        request_kwargs["allow_redirects"] = False
        return url, headers, request_kwargs

    def bounded_body(response: requests.Response, **kwargs: Any) -> None:
        # Read the body here, at most MAX_TOKEN_RESPONSE_BYTES of it, before
        # requests would read all of it into memory.
        body = response.raw.read(MAX_TOKEN_RESPONSE_BYTES + 1, decode_content=True)
        if len(body) > MAX_TOKEN_RESPONSE_BYTES:
            response.close()
            raise TokenError("token response too large")
        response._content = body
        response._content_consumed = True

    def check_status(response: requests.Response) -> requests.Response:
        if not 200 <= response.status_code < 300:
            raise TokenError(f"token endpoint answered {response.status_code}")
        return response

    oauth.hooks["response"].append(bounded_body)
    oauth.register_compliance_hook("access_token_request", no_redirects)
    oauth.register_compliance_hook("access_token_response", check_status)
    extra: dict[str, Any] = {"audience": config.audience} if config.audience else {}
    try:
        token = oauth.fetch_token(
            config.token_url,
            client_secret=config.client_secret,
            timeout=timeout,
            verify=verify,
            **extra,
        )
    except Warning as warning:
        # oauthlib refuses a token whose scope differs from the one asked for
        # (or is set when none was asked for); the receiver decides what the
        # token allows, so take it.
        token = getattr(warning, "token", None)
        if token is None:
            raise TokenError("invalid token response") from None
    except OAuth2Error as exc:
        if exc.error == "insecure_transport":
            raise TokenError("token_url must use https") from None
        if exc.error == "missing_token":
            raise TokenError("invalid token response (no access_token)") from None
        raise TokenError(f"invalid token response ({exc.error})") from None
    except ValueError:
        raise TokenError("invalid token response (not JSON)") from None
    # (The session is not closed: that would close the shared adapter's pools.)
    access = token.get("access_token") if isinstance(token, dict) else None
    if not isinstance(access, str) or not access:
        raise TokenError("invalid token response (no access_token)")
    try:
        lifetime = int(token.get("expires_in") or DEFAULT_LIFETIME_SECONDS)
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME_SECONDS
    return access, lifetime
