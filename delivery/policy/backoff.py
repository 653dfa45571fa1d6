"""The retry schedule: how long to wait before retry n.

The table is WEBHOOK_RETRY_SCHEDULE (the last entry repeats for ever), each
delay spread by ±WEBHOOK_RETRY_JITTER so that endpoints that failed together
are not retried together.
"""

import random
from collections.abc import Callable, Sequence
from datetime import timedelta

from django.conf import settings


def base_delay(step: int, *, schedule: Sequence[timedelta] | None = None) -> timedelta:
    """The table's delay before retry step+1 (step 0 = the first retry)."""
    table = schedule if schedule is not None else settings.WEBHOOK_RETRY_SCHEDULE
    return table[min(max(step, 0), len(table) - 1)]


def retry_delay(
    step: int,
    *,
    schedule: Sequence[timedelta] | None = None,
    jitter: float | None = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> timedelta:
    """base_delay(step) scaled by a random factor in [1 - jitter, 1 + jitter]."""
    spread = settings.WEBHOOK_RETRY_JITTER if jitter is None else jitter
    return base_delay(step, schedule=schedule) * (1 + uniform(-spread, spread))
