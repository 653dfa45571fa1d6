"""The sender threads: a bounded pool that serves its queue fairly by tenant.

A worker process runs several batches at once and all of them share one pool
of WEBHOOK_HTTP_CONCURRENCY threads. With a FIFO queue (ThreadPoolExecutor),
a request claimed fairly could still wait behind every request of another
tenant's batches already queued: with slow receivers that is seconds. Here
each key (the tenant) has its own queue and idle threads take the next
request from the keys in turn, so a tenant's request waits for at most one
request of each other tenant with queued work.
"""

import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

_Call = tuple[Future, Callable[..., Any], tuple[Any, ...]]


class FairPool:
    """submit(key, fn, *args) -> Future, run on at most `max_workers` threads.

    Threads start as work arrives and then stay (like ThreadPoolExecutor's).
    """

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self.max_workers = max_workers
        self._prefix = thread_name_prefix
        self._lock = threading.Condition()
        # Keys in turn order: the key served is moved to the end.
        self._queues: dict[Hashable, deque[_Call]] = {}
        self._queued = 0
        self._idle = 0
        self._threads = 0
        self._shutdown = False

    def submit(self, key: Hashable, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            self._queues.setdefault(key, deque()).append((future, fn, args))
            self._queued += 1
            if self._queued > self._idle and self._threads < self.max_workers:
                self._threads += 1
                name = f"{self._prefix}_{self._threads}"
                threading.Thread(target=self._work, name=name, daemon=True).start()
            else:
                self._lock.notify()
        return future

    def shutdown(self) -> None:
        """Idle threads end; queued calls still run first."""
        with self._lock:
            self._shutdown = True
            self._lock.notify_all()

    def _next(self) -> _Call | None:
        """The next call in turn, or None once shut down and drained."""
        with self._lock:
            while not self._queues:
                if self._shutdown:
                    return None
                self._idle += 1
                self._lock.wait()
                self._idle -= 1
            key = next(iter(self._queues))
            calls = self._queues.pop(key)
            call = calls.popleft()
            if calls:
                self._queues[key] = calls  # back of the line
            self._queued -= 1
            return call

    def _work(self) -> None:
        while (call := self._next()) is not None:
            future, fn, args = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to whoever waits on it
                future.set_exception(exc)
            else:
                future.set_result(result)
            del call, future, fn, args  # drop references while idle
