"""delivery.pipeline.fair_pool: sender threads that take tenants in turn."""

import threading
import time

import pytest

from delivery.pipeline.fair_pool import FairPool


@pytest.fixture
def pool():
    made: list[FairPool] = []

    def make(workers: int, spare: int = 0) -> FairPool:
        made.append(FairPool(workers, thread_name_prefix="test-fair", spare=spare))
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
        assert sum(future.running() for future in busy) == 2
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


def _blocked(fair: FairPool, count: int, running: int) -> tuple:
    release = threading.Event()
    calls = [fair.submit("a", release.wait, 10) for _ in range(count)]
    deadline = time.monotonic() + 5
    while sum(c.running() for c in calls) < running and time.monotonic() < deadline:
        time.sleep(0.01)
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
