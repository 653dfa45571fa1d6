"""The sender threads: a bounded pool that serves its queue fairly by tenant.

A worker process runs several batches at once and all of them share one pool
of WEBHOOK_HTTP_CONCURRENCY threads. With a FIFO queue (ThreadPoolExecutor),
a request claimed fairly would still wait behind every request of another
tenant's batches already queued: with slow receivers, seconds. Here each key
(the tenant) has its own queue and threads take the keys in turn.

Taking turns is not enough when one tenant's slow requests fill every thread:
the next thread is free only when one of them ends (up to WEBHOOK_TIMEOUT).
So a key with nothing running may also start a call on one of `spare` extra
threads: every tenant with queued work has a request in flight within
moments, and at most max_workers + spare calls run at once.

A key is `crowded` when its waiting calls would take longer than a given
horizon to start, given how long its calls have been taking: more of them
would only wait longer, so the engine claims none for it and asks to be
called back (`when_room`) once that is no longer so. Slow receivers make a
short queue crowded; fast ones hardly ever do.
"""

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

logger = logging.getLogger("webhooks.delivery")

_Call = tuple[Future, Callable[..., Any], tuple[Any, ...]]


class FairPool:
    """submit(key, fn, *args) -> Future, run on the pool's threads.

    At most `max_workers` calls run at once, plus up to `spare` (default an
    eighth of max_workers) more whose key has no other call running. Threads
    start as work arrives and then stay (like ThreadPoolExecutor's).
    """

    def __init__(
        self, max_workers: int, thread_name_prefix: str, spare: int | None = None
    ) -> None:
        self.max_workers = max_workers
        self.spare = max(1, max_workers // 8) if spare is None else spare
        self._prefix = thread_name_prefix
        self._lock = threading.Condition()
        # Keys in turn order: the key served is moved to the end.
        self._queues: dict[Hashable, deque[_Call]] = {}
        self._running: Counter[Hashable] = Counter()
        self._running_total = 0
        self._idle = 0
        self._threads = 0
        self._shutdown = False
        self._watched: dict[Hashable, Callable[[], Any]] = {}
        self._horizon = 0.0
        # How long each key's calls take (a moving average, in seconds).
        self._duration: dict[Hashable, float] = {}
        # Since when each key has had calls running without a break.
        self._busy_since: dict[Hashable, float] = {}

    def submit(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            self._queues.setdefault(key, deque()).append((future, fn, args))
            # A call that may start now wakes an idle thread (counted off at
            # once, so the next call does not count on it too) or starts a
            # new one; a call that must wait is taken by a thread that ends
            # a call.
            if self._may_start(key):
                if self._idle:
                    self._idle -= 1
                    self._lock.notify()
                elif self._threads < self._most:
                    self._threads += 1
                    name = f"{self._prefix}_{self._threads}"
                    thread = threading.Thread(target=self._work, name=name, daemon=True)
                    thread.start()
        return future

    def shutdown(self) -> None:
        """Idle threads end; queued calls still run first."""
        with self._lock:
            self._shutdown = True
            self._idle = 0
            self._lock.notify_all()

    def crowded(self, horizon: float) -> set[Hashable]:
        """Keys whose waiting calls would take more than `horizon` seconds to
        start, if the whole pool ran them at the pace their calls have run."""
        with self._lock:
            self._horizon = horizon
            return {key for key in self._queues if self._is_crowded(key)}

    def when_room(self, keys: set[Hashable], callback: Callable[[], Any]) -> None:
        """callback() once for each of `keys` when it is no longer crowded (at
        once if that is already so); it runs on a sender thread."""
        ready = []
        with self._lock:
            for key in keys:
                if self._is_crowded(key):
                    self._watched[key] = callback
                else:
                    ready.append(callback)
        for each in ready:
            each()

    def _is_crowded(self, key: Hashable) -> bool:
        waiting = len(self._queues.get(key, ()))
        if not waiting:
            return False
        duration = self._duration.get(key)
        if duration is None:
            # None of its calls ended yet: they take at least as long as it
            # has been busy, and are taken to last the horizon (so more than
            # a pool's worth waiting is crowded) until one ends.
            busy = self._busy_since.get(key)
            duration = max(self._horizon, time.monotonic() - busy if busy else 0.0)
        return waiting * duration / self.max_workers > self._horizon

    @property
    def _most(self) -> int:
        return self.max_workers + self.spare

    def _may_start(self, key: Hashable) -> bool:
        if self._running_total >= self._most:
            return False
        return self._running_total < self.max_workers or not self._running[key]

    def _next(self) -> tuple[Hashable, _Call, Callable[[], Any] | None] | None:
        """The next call that may start, in turn, and the callback its key's
        shorter queue is due; None once shut down and drained."""
        with self._lock:
            while True:
                key = next((k for k in self._queues if self._may_start(k)), None)
                if key is not None:
                    break
                if self._shutdown and not self._queues:
                    return None
                self._idle += 1  # counted off by whoever wakes this thread
                self._lock.wait()
            calls = self._queues.pop(key)
            call = calls.popleft()
            if calls:
                self._queues[key] = calls  # back of the line
            callback = None
            if key in self._watched and not self._is_crowded(key):
                callback = self._watched.pop(key)
            if not self._running[key]:
                self._busy_since[key] = time.monotonic()
            self._running[key] += 1
            self._running_total += 1
            return key, call, callback

    def _done(self, key: Hashable, seconds: float) -> None:
        with self._lock:
            last = self._duration.get(key)
            self._duration[key] = (
                seconds if last is None else last * 0.9 + seconds * 0.1
            )
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
                del self._busy_since[key]
            self._running_total -= 1
            # No notify: this thread takes the next call itself.

    def _work(self) -> None:
        while (picked := self._next()) is not None:
            key, (future, fn, args), callback = picked
            if callback is not None:
                _quietly(callback)
            started = time.monotonic()
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args)
                    except BaseException as exc:  # handed to whoever waits on it
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                self._done(key, time.monotonic() - started)
            del picked, future, fn, args, callback  # drop references while idle


def _quietly(callback: Callable[[], Any]) -> None:
    """A callback's failure must not end a sender thread (nor skip its call)."""
    try:
        callback()
    except Exception:
        logger.exception("a fair pool callback raised")
