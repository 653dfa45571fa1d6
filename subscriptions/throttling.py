"""Per-API-key request throttling: a DRF throttle on the default cache (Redis
when REDIS_URL is set, so all web processes share the counts)."""

import logging
import math
import threading
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache import cache as default_cache
from django.core.cache.backends.redis import RedisCache
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from subscriptions.models import ApiKey

if TYPE_CHECKING:
    # Not at run time: DRF imports this module while defining APIView.
    from rest_framework.views import APIView

logger = logging.getLogger("webhooks.api")


class ApiKeyRateThrottle(SimpleRateThrottle):
    """At most WEBHOOK_THROTTLE_RATE (e.g. `6000/min`) requests per API key;
    views with `throttle_scope = "publish"` use WEBHOOK_PUBLISH_THROTTLE_RATE
    instead (a platform publishes far more often than a client manages webhooks).

    A fixed-window counter instead of DRF's sliding history, which would
    read and write a list of up to 6000 timestamps on every request. A
    process claims the window's requests from the shared counter in blocks
    (one Redis round trip, a script that INCRBYs the counter and sets its
    expiry when it starts it, per block_size(limit) requests) and spends
    them locally, so most requests make no round trip. No more than the
    limit is ever granted across processes; the error is the other way: a
    process may refuse while others still hold unspent tokens, at most one
    block (0.1 % of the limit) per process. A process that got less than a
    block knows the window is spent and refuses without asking Redis.
    Unauthenticated requests are not counted (they end in a 401 first). If
    the cache is unreachable requests are let through: a Redis outage must
    not stop the API from accepting events.
    """

    scope = "api_key"

    def get_rate(self) -> str:
        # Read per request, not at import, so the deployment's value applies.
        return settings.WEBHOOK_THROTTLE_RATE

    def _use_scope_of(self, view: "APIView") -> None:
        if getattr(view, "throttle_scope", None) == "publish":
            self.scope = "publish"
            self.num_requests, self.duration = self.parse_rate(
                settings.WEBHOOK_PUBLISH_THROTTLE_RATE
            )

    def get_cache_key(self, request: Request, view: "APIView") -> str | None:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return None
        # pk and prefix: a recreated database reuses pks, prefixes are random.
        ident = f"{api_key.pk}:{api_key.prefix}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: "APIView") -> bool:
        self._use_scope_of(view)
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_end = (window + 1) * self.duration
        counter = f"{key}:{window}"
        # The limit in the local key: a changed rate starts a fresh allowance.
        local = (counter, self.num_requests)
        with _lock:
            allowance = _allowances.get(local)
            if allowance is not None and (allowance.left or allowance.spent):
                return allowance.take()
        block = block_size(self.num_requests)
        try:
            claimed = self._claim(counter, block, timeout=self.duration + 1)
        except Exception:
            logger.warning("throttle cache unavailable; request let through")
            return True
        # The share of this block still under the limit (all of it, or the
        # rest up to the limit, or nothing).
        granted = max(0, min(block, self.num_requests - (claimed - block)))
        with _lock:
            _forget_ended(self.now)
            allowance = _allowances.setdefault(local, _Allowance(self.window_end))
            allowance.left += granted
            allowance.spent = allowance.spent or granted < block
            return allowance.take()

    def _claim(self, counter: str, block: int, *, timeout: int) -> int:
        """Add `block` to the window's counter (created with `timeout`); its
        new value."""
        cache = self.cache
        if cache is default_cache:  # DRF's default: a proxy of this thread's
            cache = caches[DEFAULT_CACHE_ALIAS]
        if not isinstance(cache, RedisCache):
            cache.add(counter, 0, timeout)
            return cache.incr(counter, block)
        key = cache.make_and_validate_key(counter)
        return int(_counter_script(cache)(keys=[key], args=[timeout, block]))

    def wait(self) -> float:
        return max(0.0, math.ceil(self.window_end - self.now))


def block_size(limit: int) -> int:
    """Requests a process claims per round trip: 0.1 % of the limit (300 of
    the default 300000/min publish rate, 6 of 6000/min), 1 for small limits,
    which are exact."""
    return max(1, limit // 1000)


class _Allowance:
    """The requests this process claimed in one window and has not spent."""

    __slots__ = ("left", "spent", "window_end")

    def __init__(self, window_end: float) -> None:
        self.left = 0
        self.spent = False  # the shared counter reached the limit
        self.window_end = window_end

    def take(self) -> bool:
        if self.left:
            self.left -= 1
            return True
        return False


# Per process, shared by the web threads (guarded by _lock): keyed by the
# window's counter and the limit.
_lock = threading.Lock()
_allowances: dict[tuple[str, int], _Allowance] = {}


def _forget_ended(now: float) -> None:
    for local in [k for k, a in _allowances.items() if a.window_end <= now]:
        del _allowances[local]


# INCRBY, and EXPIRE when INCRBY created the counter: what cache.add() and
# cache.incr() did in two round trips, in one (EVALSHA), atomically. Django's
# Redis serializer stores integers as plain numbers, so the cache reads it too.
_COUNT = """
local count = redis.call('INCRBY', KEYS[1], ARGV[2])
if count == tonumber(ARGV[2]) then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


def _counter_script(cache: RedisCache) -> Any:
    """The _COUNT script on this cache's redis client, made once per cache
    object: Django builds a new client (~0.1 ms) on every get_client()."""
    client = cache._cache
    script = getattr(client, "_webhooks_count", None)
    if script is None:
        script = client.get_client(write=True).register_script(_COUNT)
        client._webhooks_count = script
    return script
