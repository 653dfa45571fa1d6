"""Per-API-key request throttling: a DRF throttle on the default cache (Redis
when REDIS_URL is set, so all web processes share the counts)."""

import logging
import math
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
    read and write a list of up to 6000 timestamps on every request: on
    Redis one round trip per request (a script that INCRs the window's
    counter and sets its expiry when it starts it). Unauthenticated
    requests are not counted (they end in a 401 first). If the cache is
    unreachable requests are let through: a Redis outage must not stop the
    API from accepting events.
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
        try:
            count = self._count(counter, timeout=self.duration + 1)
        except Exception:
            logger.warning("throttle cache unavailable; request let through")
            return True
        return count <= self.num_requests

    def _count(self, counter: str, *, timeout: int) -> int:
        """Add one to the window's counter (created with `timeout`); its value."""
        cache = self.cache
        if cache is default_cache:  # DRF's default: a proxy of this thread's
            cache = caches[DEFAULT_CACHE_ALIAS]
        if not isinstance(cache, RedisCache):
            cache.add(counter, 0, timeout)
            return cache.incr(counter)
        key = cache.make_and_validate_key(counter)
        return int(_counter_script(cache)(keys=[key], args=[timeout]))

    def wait(self) -> float:
        return max(0.0, math.ceil(self.window_end - self.now))


# INCR, and EXPIRE when INCR created the counter: what cache.add() and
# cache.incr() did in two round trips, in one (EVALSHA), atomically. Django's
# Redis serializer stores integers as plain numbers, so the cache reads it too.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
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
