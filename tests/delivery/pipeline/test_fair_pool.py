"""delivery.pipeline.fair_pool: sender threads that take tenants in turn."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from delivery.pipeline.fair_pool import FairPool


@pytest.fixture
def pool():
    made: list[FairPool] = []

    def make(workers: int, spare: int = 0, **kwargs) -> FairPool:
        kwargs.setdefault("thread_name_prefix", "test-fair")
        made.append(FairPool(workers, spare=spare, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.shutdown()


def test_a_tenant_waits_for_one_call_of_another_not_its_whole_queue(pool):
    fair = pool(1)
    started = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def call(name: str) -> str:
        order.append(name)
        if name == "a0":
            started.set()
            assert release.wait(10)
        return name

    futures = [fair.submit("a", call, "a0")]
    assert started.wait(10)  # the one thread is busy with a0
    futures += [fair.submit("a", call, f"a{n}") for n in range(1, 50)]
    futures.append(fair.submit("b", call, "b0"))
    release.set()
    assert [future.result(timeout=10) for future in futures][-1] == "b0"
    assert order[:4] == ["a0", "a1", "b0", "a2"]


def test_tenants_alternate_while_both_have_work(pool):
    fair = pool(1)
    gate = threading.Event()
    order: list[str] = []
    fair.submit("x", gate.wait, 10)
    futures = [
        fair.submit(key, order.append, f"{key}{n}") for n in range(3) for key in "ab"
    ]
    futures += [fair.submit("c", order.append, "c0")]
    gate.set()
    for future in futures:
        future.result(timeout=10)
    assert order == ["a0", "b0", "c0", "a1", "b1", "a2", "b2"]


def test_a_tenant_with_nothing_running_starts_at_once_on_a_spare_thread(pool):
    fair = pool(2, spare=1)
    release = threading.Event()
    busy = [fair.submit("a", release.wait, 10) for _ in range(5)]
    try:
        # a's calls hold both regular threads and the rest of a's queue waits;
        # b's first call does not wait for any of them.
        assert fair.submit("b", lambda: "b0").result(timeout=5) == "b0"
        assert _wait_running(busy, 2) == 2
    finally:
        release.set()
    assert all(future.result(timeout=10) for future in busy)


def test_the_default_spare_is_an_eighth_of_the_threads():
    assert FairPool(128, thread_name_prefix="t").spare == 16
    assert FairPool(4, thread_name_prefix="t").spare == 1


def test_no_more_than_max_workers_calls_run_at_once(pool):
    fair = pool(3)
    lock = threading.Lock()
    running = [0, 0]  # now, most

    def call() -> None:
        with lock:
            running[0] += 1
            running[1] = max(running)
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    futures = [fair.submit(n % 4, call) for n in range(30)]
    for future in futures:
        future.result(timeout=30)
    assert running[1] == 3


def test_an_exception_reaches_the_future_and_the_thread_carries_on(pool):
    fair = pool(1)

    def broken() -> None:
        raise ValueError("boom")

    failed = fair.submit("a", broken)
    with pytest.raises(ValueError, match="boom"):
        failed.result(timeout=10)
    assert fair.submit("a", lambda: 42).result(timeout=10) == 42


def test_nothing_is_accepted_after_shutdown(pool):
    fair = pool(1)
    fair.shutdown()
    with pytest.raises(RuntimeError):
        fair.submit("a", print)


def test_a_key_is_crowded_when_its_queue_would_outlast_the_horizon(pool):
    fair = pool(2)
    # Calls of a take ~50 ms: two threads start four waiting ones in ~100 ms.
    for _ in range(2):
        fair.submit("a", time.sleep, 0.05).result(timeout=5)
    release = threading.Event()
    calls = [fair.submit("a", release.wait, 10) for _ in range(6)]
    deadline = time.monotonic() + 5
    while sum(call.running() for call in calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fair.crowded(horizon=10) == set()
    assert fair.crowded(horizon=0.05) == {"a"}
    told: list[str] = []
    fair.when_room({"a"}, lambda: told.append("room"))
    assert told == []
    release.set()
    assert all(call.result(timeout=10) for call in calls)
    assert told == ["room"]  # once, as a's queue got short enough
    assert fair.crowded(horizon=0.05) == set()


def _wait_running(calls: list, count: int) -> int:
    """How many of `calls` run, once `count` do (or after 5 s)."""
    deadline = time.monotonic() + 5
    while sum(c.running() for c in calls) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return sum(c.running() for c in calls)


def _blocked(fair: FairPool, count: int, running: int) -> tuple:
    release = threading.Event()
    calls = [fair.submit("a", release.wait, 10) for _ in range(count)]
    _wait_running(calls, running)
    return release, calls


def test_before_any_call_ends_more_than_a_pool_s_worth_waiting_is_crowded(pool):
    fair = pool(2)
    release, calls = _blocked(fair, 5, running=2)
    try:
        assert fair.crowded(horizon=10) == {"a"}  # three waiting, two threads
    finally:
        release.set()
    assert all(call.result(timeout=10) for call in calls)


def test_before_any_call_ends_they_count_as_long_as_the_key_has_been_busy(pool):
    fair = pool(4)
    release, calls = _blocked(fair, 6, running=4)
    try:
        # Two waiting on four threads: crowded once they have been running
        # for more than twice the horizon.
        assert fair.crowded(horizon=1.0) == set()
        time.sleep(0.3)
        assert fair.crowded(horizon=0.1) == {"a"}
    finally:
        release.set()
    assert all(call.result(timeout=10) for call in calls)


def test_when_room_calls_back_at_once_for_a_key_that_is_not_crowded(pool):
    fair = pool(2)
    told: list[str] = []
    fair.when_room({"a"}, lambda: told.append("room"))
    assert told == ["room"]


class _Clock:
    """A CPU clock for the pacer: `busy` runs at one core, else it stands."""

    def __init__(self) -> None:
        self.busy = False
        self._stood = 0.0

    def __call__(self) -> float:
        return time.monotonic() if self.busy else self._stood


@contextmanager
def _running(fair: FairPool, count: int, running: int) -> Iterator[list]:
    """`count` blocked calls of key "a", once `running` of them run; they are
    released (and must all have ended well) when the block ends."""
    release, calls = _blocked(fair, count, running)
    try:
        yield calls
    finally:
        release.set()
    assert all(call.result(timeout=10) for call in calls)


def _now_running(calls: list) -> int:
    return sum(call.running() for call in calls)


def test_calls_waiting_on_their_receivers_open_the_pool_past_steady(pool):
    fair = pool(32, steady=4)
    # Blocked calls use no CPU (the real process clock): the pacer lets more
    # start until all 32 run.
    with _running(fair, 40, running=32) as calls:
        assert _now_running(calls) == 32


def test_a_busy_process_runs_steady_calls_and_a_drained_pool_starts_small(pool):
    clock = _Clock()
    fair = pool(16, steady=4, slow_call=60, cpu_clock=clock)
    with _running(fair, 16, running=16) as calls:  # idle: opened to 16
        assert _now_running(calls) == 16
    time.sleep(0.1)  # a future is done just before its thread counts it off

    clock.busy = True
    with _running(fair, 16, running=4) as calls:
        time.sleep(20 * 0.01)  # twenty of the pacer's periods
        assert _now_running(calls) == 4


def test_a_batch_submitted_in_a_loop_starts_steady_threads_not_one_per_call(pool):
    clock = _Clock()
    clock.busy = True
    fair = pool(
        16, steady=4, slow_call=60, cpu_clock=clock, thread_name_prefix="test-herd"
    )
    with _running(fair, 16, running=4):
        herd = [t for t in threading.enumerate() if t.name.startswith("test-herd_")]
        assert len(herd) == 4 + 1  # four senders and the pacer
        # A tenant with nothing running still starts at once.
        assert fair.submit("b", lambda: "b0").result(timeout=5) == "b0"


def test_a_key_whose_calls_take_long_opens_the_pool_however_busy(pool):
    clock = _Clock()
    clock.busy = True
    fair = pool(16, steady=4, cpu_clock=clock)
    # Calls blocked past SLOW_CALL (50 ms: a slow receiver) while the
    # process is busy (claiming, say): the pacer opens the pool all the same.
    with _running(fair, 20, running=16) as calls:
        assert _now_running(calls) == 16
