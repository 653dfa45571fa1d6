"""LookupCache (webhooks_project/lookups.py): positives cached for at most
WEBHOOK_LOOKUP_CACHE_TTL, misses never, entries dropped on demand, and no
caching at all with a TTL of 0. No database: the loaders are stand-ins."""

import functools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from cachetools import TTLCache

from webhooks_project import lookups
from webhooks_project.lookups import LookupCache


class FakeClock:
    """A monotonic clock the test moves by hand, so expiry is exact."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Loader:
    """A stand-in for a database read: counts its calls, returns `value`."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        return self.value


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    """The caches' TTLCache runs on a fake clock (LookupCache builds its
    TTLCache when it first sees the TTL, i.e. after this patch)."""
    fake = FakeClock()
    monkeypatch.setattr(lookups, "TTLCache", functools.partial(TTLCache, timer=fake))
    return fake


@pytest.fixture
def make_cache(settings, clock) -> Iterator[Callable[..., LookupCache]]:
    """make_cache(ttl_ms=500) -> a fresh LookupCache with that TTL; it is
    taken out of the module's registry afterwards, so clear_all() of other
    tests does not walk caches left over from this one."""
    made: list[LookupCache] = []

    def make(ttl_ms: int = 500) -> LookupCache:
        settings.WEBHOOK_LOOKUP_CACHE_TTL = timedelta(milliseconds=ttl_ms)
        cache: LookupCache = LookupCache(f"test {len(made)}")
        made.append(cache)
        return cache

    yield make
    for cache in made:
        lookups._CACHES.remove(cache)


def test_a_found_value_is_loaded_once_and_then_served_from_the_cache(make_cache):
    cache = make_cache()
    load = Loader("row")

    assert cache.get("key", load) == "row"
    assert cache.get("key", load) == "row"
    assert load.calls == 1


def test_keys_are_cached_apart(make_cache):
    cache = make_cache()

    assert cache.get("a", Loader("row a")) == "row a"
    assert cache.get("b", Loader("row b")) == "row b"
    assert cache.get("a", Loader("not read")) == "row a"


def test_a_miss_is_not_cached_so_a_row_created_since_is_found_at_once(make_cache):
    cache = make_cache()
    missing = Loader(None)

    assert cache.get("key", missing) is None
    assert cache.get("key", missing) is None
    assert missing.calls == 2  # asked the database each time

    # The row exists now (another process created it): the very next look-up
    # finds it, without waiting for any TTL.
    assert cache.get("key", Loader("row")) == "row"


def test_an_entry_is_served_until_its_ttl_and_read_afresh_after(make_cache, clock):
    cache = make_cache(ttl_ms=500)
    cache.get("key", Loader("old row"))

    clock.advance(0.45)
    assert cache.get("key", Loader("new row")) == "old row"

    # Past 500 ms the row is read again: a change made elsewhere is seen.
    clock.advance(0.1)
    changed = Loader("new row")
    assert cache.get("key", changed) == "new row"
    assert changed.calls == 1


def test_an_entry_lives_its_ttl_from_when_it_was_loaded_not_from_its_last_use(
    make_cache, clock
):
    # Served often, a revoked key must still expire: reads do not extend it.
    cache = make_cache(ttl_ms=500)
    cache.get("key", Loader("old row"))
    for _ in range(5):
        clock.advance(0.09)
        assert cache.get("key", Loader("new row")) == "old row"

    clock.advance(0.1)
    assert cache.get("key", Loader("new row")) == "new row"


def test_an_entry_expires_in_real_time_too(make_cache, monkeypatch):
    # The real clock (no fake timer): the TTL is wall time, not a count of reads.
    monkeypatch.setattr(lookups, "TTLCache", TTLCache)
    cache = make_cache(ttl_ms=50)
    cache.get("key", Loader("old row"))

    time.sleep(0.1)
    assert cache.get("key", Loader("new row")) == "new row"


def test_discard_drops_only_that_key(make_cache):
    cache = make_cache()
    cache.get("revoked", Loader("revoked key"))
    cache.get("other", Loader("other key"))

    cache.discard("revoked")

    assert cache.get("revoked", Loader(None)) is None
    assert cache.get("other", Loader("not read")) == "other key"


def test_discarding_a_key_that_is_not_cached_is_harmless(make_cache):
    cache = make_cache()

    cache.discard("never cached")

    assert cache.get("never cached", Loader("row")) == "row"


def test_clear_drops_every_entry(make_cache):
    cache = make_cache()
    cache.get("a", Loader("row a"))
    cache.get("b", Loader("row b"))

    cache.clear()

    assert cache.get("a", Loader("new a")) == "new a"
    assert cache.get("b", Loader("new b")) == "new b"


def test_clear_all_empties_every_lookup_cache_of_the_process(make_cache):
    first, second = make_cache(), make_cache()
    first.get("key", Loader("first row"))
    second.get("key", Loader("second row"))

    lookups.clear_all()

    assert first.get("key", Loader("new first")) == "new first"
    assert second.get("key", Loader("new second")) == "new second"


def test_a_ttl_of_zero_turns_caching_off(make_cache):
    cache = make_cache(ttl_ms=0)
    load = Loader("row")

    cache.get("key", load)
    cache.get("key", load)

    assert load.calls == 2


def test_a_ttl_changed_later_is_obeyed_and_drops_what_was_cached(
    make_cache, settings, clock
):
    cache = make_cache(ttl_ms=500)
    cache.get("key", Loader("old row"))

    # A test or a deployment setting the TTL after the first use: the next
    # look-up runs under the new TTL, with nothing cached under the old one.
    settings.WEBHOOK_LOOKUP_CACHE_TTL = timedelta(seconds=5)
    assert cache.get("key", Loader("new row")) == "new row"

    clock.advance(1.0)  # past the old TTL, within the new one
    assert cache.get("key", Loader("newer row")) == "new row"


def test_turning_the_cache_off_serves_nothing_cached_before(make_cache, settings):
    cache = make_cache(ttl_ms=500)
    cache.get("key", Loader("old row"))

    settings.WEBHOOK_LOOKUP_CACHE_TTL = timedelta(0)

    assert cache.get("key", Loader("new row")) == "new row"


class SlowLoader(Loader):
    """A read that takes a while: it waits until the test lets it finish."""

    def __init__(self, value: object) -> None:
        super().__init__(value)
        self.started = threading.Event()
        self.finish = threading.Event()

    def __call__(self) -> object:
        self.calls += 1
        self.started.set()
        assert self.finish.wait(5), "the test never let the read finish"
        return self.value


def test_threads_missing_the_same_key_at_once_share_one_read(make_cache):
    # At every expiry under load, all of a web process's threads miss the
    # same API key together: one of them reads the row, the others wait for it.
    cache = make_cache()
    load = SlowLoader("row")
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get("key", load)))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    assert load.started.wait(5)
    time.sleep(0.05)  # the other seven are waiting now, not reading
    load.finish.set()
    for thread in threads:
        thread.join(5)

    assert got == ["row"] * 8
    assert load.calls == 1


def test_a_read_begun_before_a_discard_is_not_cached(make_cache):
    # The key was revoked while a thread was reading its (unrevoked) row: that
    # row may answer the request that read it, but is not served afterwards.
    cache = make_cache()
    stale = SlowLoader("unrevoked row")
    reader = threading.Thread(target=cache.get, args=("key", stale))
    reader.start()
    assert stale.started.wait(5)

    cache.discard("key")
    stale.finish.set()
    reader.join(5)

    assert cache.get("key", Loader(None)) is None


def test_a_miss_read_by_another_thread_is_read_again_by_each_waiter(make_cache):
    # Misses are never cached, not even for the threads that waited: a row
    # created meanwhile is found by them.
    cache = make_cache()
    missing = SlowLoader(None)
    first = threading.Thread(target=cache.get, args=("key", missing))
    first.start()
    assert missing.started.wait(5)
    got: list[object] = []
    waiter = threading.Thread(
        target=lambda: got.append(cache.get("key", Loader("created since")))
    )
    waiter.start()
    time.sleep(0.05)
    missing.finish.set()
    first.join(5)
    waiter.join(5)

    assert got == ["created since"]
