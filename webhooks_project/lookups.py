"""In-process caches of the rows every publish reads and that rarely change:
API keys by hash, event types by name, tenants by name.

Each entry lives at most WEBHOOK_LOOKUP_CACHE_TTL (500ms by default), so a
change made anywhere (another web process, the admin, a shell) takes effect
on every process within that time without any cross-process message; a change
made in this process also drops the entries at once (`discard`, `clear`).
Only positives are cached: a miss asks the database again every time, so a
key, type or tenant created a moment ago works at once.

cachetools' TTLCache (bounded size, monotonic clock) behind a lock: the web
process serves requests from several threads.
"""

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from cachetools import TTLCache
from django.conf import settings

V = TypeVar("V")
_MISSING = object()
_CACHES: list["LookupCache"] = []


class LookupCache(Generic[V]):
    """key -> a value loaded from the database, positives only, bounded life."""

    def __init__(self, name: str, *, maxsize: int = 10_000) -> None:
        self.name = name
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._ttl: float | None = None
        self._entries: TTLCache = TTLCache(maxsize=1, ttl=1)
        _CACHES.append(self)

    def _current(self) -> TTLCache | None:
        # Read per call (an attribute look-up): a test or a deployment that
        # sets the TTL later is obeyed; 0 turns the cache off.
        ttl = settings.WEBHOOK_LOOKUP_CACHE_TTL.total_seconds()
        if ttl <= 0:
            return None
        if ttl != self._ttl:
            with self._lock:
                self._entries = TTLCache(maxsize=self._maxsize, ttl=ttl)
                self._ttl = ttl
        return self._entries

    def get(self, key: Hashable, load: Callable[[], V | None]) -> V | None:
        """The cached value of key, else load() (cached unless it is None)."""
        entries = self._current()
        if entries is None:
            return load()
        with self._lock:
            value = entries.get(key, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        value = load()
        if value is not None:
            with self._lock:
                entries[key] = value
        return value

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def clear_all() -> None:
    """Empty every lookup cache of this process."""
    for cache in _CACHES:
        cache.clear()
