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

Many threads sending at once to fast receivers only wait for the
interpreter lock: each request then costs about three times the CPU it does
alone (bench/RESULTS.md). So only `steady` threads start at once; while
calls wait, a pacer thread lets `steady` more start every PACE in which the
process used less than half a core, or in which a waiting key's calls take
SLOW_CALL or more. Slow or dead receivers open the pool to max_workers
within ~0.2 s; fast ones keep the process busy and their calls short, and a
few threads deliver more than many. Once the pool has drained it starts
small again. (How long a call takes cannot alone tell a receiver's wait from
the lock's once many threads run; with `steady` running it can.)

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

# Threads that may run at once whatever the process's CPU.
STEADY = 8
# The pacer's period, and the CPU (in cores, over one period) below which the
# process is waiting on its receivers rather than working.
PACE = 0.01
CPU_LIMIT = 0.5
# Calls that take this long wait on their receiver, not on the interpreter
# lock (a fast receiver's calls take a few ms with STEADY threads running):
# their key opens the pool however busy the process is.
SLOW_CALL = 0.05


class FairPool:
    """submit(key, fn, *args) -> Future, run on the pool's threads.

    At most `max_workers` calls run at once (`steady` of them while the
    process is busy, see the module doc), plus up to `spare` (default an
    eighth of max_workers) more whose key has no other call running. Threads
    start as work arrives and then stay (like ThreadPoolExecutor's).
    """

    def __init__(
        self,
        max_workers: int,
        thread_name_prefix: str,
        spare: int | None = None,
        steady: int = STEADY,
        slow_call: float = SLOW_CALL,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.max_workers = max_workers
        self.spare = max(1, max_workers // 8) if spare is None else spare
        self.steady = min(steady, max_workers)
        self.slow_call = slow_call
        self._prefix = thread_name_prefix
        lock = threading.RLock()
        self._lock = threading.Condition(lock)
        # The pacer waits on its own condition: a notify() meant for an idle
        # sender thread must not wake it instead.
        self._pacer_wake = threading.Condition(lock)
        self._pacer: threading.Thread | None = None
        self._cpu_clock = cpu_clock  # this process's CPU seconds
        # Calls may start while fewer than this many run (steady..max_workers).
        self._allowed = self.steady
        # Keys in turn order: the key served is moved to the end.
        self._queues: dict[Hashable, deque[_Call]] = {}
        self._running: Counter[Hashable] = Counter()
        self._running_total = 0
        self._idle = 0
        self._starting = 0  # threads woken or started, not yet in _next
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
            calls = self._queues.setdefault(key, deque())
            calls.append((future, fn, args))
            # A call that may start now wakes a thread for it; a call that
            # must wait is taken by a thread that ends a call, or let start
            # by the pacer. On a spare thread only a key's first waiting call
            # wakes one: the thread takes that key's calls in turn.
            if self._may_start(key, spare=len(calls) == 1):
                self._start_one()
            else:
                self._poke_pacer()
        return future

    def _poke_pacer(self) -> None:
        """Have the pacer watch while calls are held. Called with the lock held."""
        if not self._held():
            return
        if self._pacer is None:
            self._pacer = threading.Thread(
                target=self._pace, name=f"{self._prefix}_pacer", daemon=True
            )
            self._pacer.start()
        self._pacer_wake.notify()

    def _start_one(self) -> None:
        """Wake an idle thread (counted off at once, so the next call does not
        count on it too) or start a new one. Called with the lock held.

        Until it arrives in _next it counts as running: a batch submitted in
        a loop would otherwise wake every idle thread before the first of
        them ran, for all but `allowed` of them to go back to sleep."""
        if self._idle:
            self._idle -= 1
            self._starting += 1
            self._lock.notify()
        elif self._threads < self._most:
            self._threads += 1
            self._starting += 1
            name = f"{self._prefix}_{self._threads}"
            thread = threading.Thread(target=self._work, name=name, daemon=True)
            thread.start()

    def _held(self) -> bool:
        """Calls wait that max_workers would let start."""
        return bool(self._queues) and self._running_total < self.max_workers

    def _pace(self) -> None:
        """While calls are held, let `steady` more start each PACE in which
        the process used less than CPU_LIMIT cores."""
        while True:
            with self._lock:
                while not self._held():
                    if self._shutdown:
                        return
                    self._pacer_wake.wait()
            cpu, started = self._cpu_clock(), time.monotonic()
            time.sleep(PACE)
            used = (self._cpu_clock() - cpu) / (time.monotonic() - started)
            with self._lock:
                if not self._held():
                    continue
                if used >= CPU_LIMIT and not self._slow_keys_wait():
                    continue
                self._allowed = min(self.max_workers, self._allowed + self.steady)
                waiting = sum(len(calls) for calls in self._queues.values())
                room = self._allowed - self._running_total - self._starting
                for _ in range(min(waiting, room)):
                    self._start_one()

    def _slow_keys_wait(self) -> bool:
        """A key with waiting calls has calls that take `slow_call` or more
        (or, before one of them ended, has been busy that long)."""
        now = time.monotonic()
        for key in self._queues:
            seconds = self._duration.get(key)
            if seconds is None and key in self._busy_since:
                seconds = now - self._busy_since[key]
            if seconds is not None and seconds >= self.slow_call:
                return True
        return False

    def shutdown(self) -> None:
        """Idle threads end; queued calls still run first."""
        with self._lock:
            self._shutdown = True
            self._idle = 0
            self._lock.notify_all()
            self._pacer_wake.notify_all()

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

    def _may_start(self, key: Hashable, spare: bool = True) -> bool:
        """A call of `key` may start: fewer than `allowed` calls run (or are
        about to), or, if `spare`, the key has none running."""
        running = self._running_total + self._starting
        if running >= self._most:
            return False
        return running < self._allowed or (spare and not self._running[key])

    def _next(
        self, fresh: bool
    ) -> tuple[Hashable, _Call, Callable[[], Any] | None] | None:
        """The next call that may start, in turn, and the callback its key's
        shorter queue is due; None once shut down and drained. `fresh`: the
        thread was just started (and counted as starting)."""
        with self._lock:
            if fresh:
                self._arrived()
            while True:
                key = next((k for k in self._queues if self._may_start(k)), None)
                if key is not None:
                    break
                if self._shutdown and not self._queues:
                    return None
                self._poke_pacer()
                self._idle += 1  # counted off by whoever wakes this thread
                self._lock.wait()
                self._arrived()
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
            if not self._running_total and not self._queues:
                self._allowed = self.steady  # drained: the next burst starts small
            # No notify: this thread takes the next call itself.

    def _arrived(self) -> None:
        # Never below zero: shutdown's notify_all wakes threads nobody counted.
        self._starting = max(0, self._starting - 1)

    def _work(self) -> None:
        fresh = True
        while (picked := self._next(fresh)) is not None:
            fresh = False
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
