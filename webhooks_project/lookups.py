"""In-process caches of the rows every publish reads and that rarely change:
API keys by hash, event types by name, tenants by name; and of the terminal
event types, which a worker's flush asks for (delivery/pipeline/recording.py).

Each entry lives at most WEBHOOK_LOOKUP_CACHE_TTL (500ms by default), so a
change made anywhere (another web process, the admin, a shell) takes effect
on every process within that time without any cross-process message; a change
made in this process also drops the entries at once (`discard`, `clear`).
Only positives are cached: a miss asks the database again every time, so a
key, type or tenant created a moment ago works at once.

One read per key at a time: when an entry expires under load, the threads
that want it wait for the first one's read instead of each reading the same
row (8 threads of a web process did, several times a second per cache). A
read that began before a `discard` or `clear` is returned to its callers but
not cached.

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
# How long a thread waits for another's read of the same key before reading
# it itself (a read is one indexed query: milliseconds).
_READ_WAIT = 1.0
_CACHES: list["LookupCache"] = []


class LookupCache(Generic[V]):
    """key -> a value loaded from the database, positives only, bounded life."""

    def __init__(self, name: str, *, maxsize: int = 10_000) -> None:
        self.name = name
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._ttl: float | None = None
        self._entries: TTLCache = TTLCache(maxsize=1, ttl=1)
        self._reading: dict[Hashable, threading.Event] = {}
        # Moved by discard and clear: a read begun before them is not cached.
        self._generation = 0
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
            reading = self._reading.get(key)
            if reading is None:
                reading = self._reading[key] = threading.Event()
                generation = self._generation
            else:
                generation = None
        if generation is None:  # another thread is reading it
            reading.wait(_READ_WAIT)
            with self._lock:
                value = entries.get(key, _MISSING)
            # Not there: that read found nothing (never cached), failed, or
            # was dropped by a discard; read it here.
            return load() if value is _MISSING else value  # type: ignore[return-value]
        try:
            value = load()
            if value is not None:
                with self._lock:
                    if generation == self._generation:
                        entries[key] = value
            return value
        finally:
            with self._lock:
                del self._reading[key]
            reading.set()

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._generation += 1

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._generation += 1


def clear_all() -> None:
    """Empty every lookup cache of this process."""
    for cache in _CACHES:
        cache.clear()
