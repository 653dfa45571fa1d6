"""Bounded waiting: every wait in the tests is a poll with a deadline."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float = 15.0,
    interval: float = 0.02,
    message: str = "the condition",
) -> T:
    """Call probe() until it returns something truthy; return that. Raises
    AssertionError naming `message` (and the last value) at the deadline."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {message} "
                f"(last: {str(last)[:300]})"
            )
        time.sleep(interval)
