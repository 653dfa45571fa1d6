"""Rate limits: a webhook's `configuration.rate_limit` and the deployment's
WEBHOOK_HOST_RATE_LIMIT per destination (scheme://host:port, as the breaker
keys it), shared by every worker.

A GCRA (generic cell rate algorithm) per limit in Redis, one script run
(EVALSHA) right before a request, on the sender thread, so what is limited
is when requests leave, not when they were claimed. Each limit keeps a
"theoretical arrival time" (TAT): a request may go once the TAT is reached,
and moves it one interval (plus MARGIN's share) on, so requests leave at
least one interval apart and any window of the period holds at most N. The
clock is Redis' own (TIME), so workers' clocks do not matter.

Only deliveries that have a limit pay the round trip; the others never call
this module. When a request has to wait:
- a short wait (at most `max_wait`) is slept on the sender thread, then it
  asks again;
- a longer one is postponed (no attempt) to a slot planned in the same
  script: a second key per limit hands out the following free slots one
  interval apart, so a backlog comes back spread out, each delivery about
  when it may go, instead of all at once to be postponed again.

Redis unreachable: a limited delivery is postponed by UNAVAILABLE_WAIT
("never faster" wins over "now"); deliveries without a limit are not
affected. Without a Redis cache (local development on SQLite) the same
algorithm runs in the process, so limits hold per worker process only.
"""

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import redis
from django.conf import settings

from webhooks_project.conf import Rate, parse_rate

logger = logging.getLogger("webhooks.delivery")

UNAVAILABLE_WAIT = timedelta(seconds=1)
_PREFIX = "webhooks:rate:"


# Requests are spaced a little more than the rate's interval (a tenth, at most
# 100 ms more): what the receiver counts on its own clock also includes the
# jitter between our decision and its arrival (scheduling, the network), and
# "never faster" must hold there. 10/s is one request every 110 ms.
MARGIN = timedelta(milliseconds=100)


@dataclass(frozen=True)
class Limit:
    key: str
    rate: Rate

    @property
    def interval_us(self) -> int:
        interval = self.rate.interval
        spacing = interval + min(interval / 10, MARGIN)
        return max(1, round(spacing.total_seconds() * 1_000_000))


def limits_for(*, subscription: Any, destination: str) -> tuple[Limit, ...]:
    """The limits a request of this webhook to this destination obeys
    (empty, the common case: no round trip)."""
    limits = []
    if subscription.rate_limit:
        limits.append(
            Limit(
                f"{_PREFIX}webhook:{subscription.pk}",
                parse_rate(subscription.rate_limit),
            )
        )
    host_rate = settings.WEBHOOK_HOST_RATE_LIMIT
    if host_rate is not None:
        limits.append(Limit(f"{_PREFIX}host:{destination}", host_rate))
    return tuple(limits)


def sleep_budget(limits: Sequence[Limit]) -> float:
    """How long a sender thread may sleep for a slot (seconds): up to 16
    intervals, at most 1 s, so few threads wait on one webhook at a time."""
    interval = max(limit.rate.interval.total_seconds() for limit in limits)
    return min(1.0, 16 * interval)


def describe(limits: Sequence[Limit]) -> str:
    return " and ".join(
        f"{limit.rate} ({'webhook' if ':webhook:' in limit.key else 'destination'})"
        for limit in limits
    )


def acquire(limits: Sequence[Limit], *, max_wait: float) -> float:
    """Take a slot for one request now, sleeping up to about `max_wait`
    seconds for it. Returns 0.0 when the request may go, else how many
    seconds from now the delivery should be postponed to (its planned slot)."""
    deadline = time.monotonic() + max_wait
    while True:
        try:
            wait_us = _run(limits, max_wait_us=int(max(0.0, max_wait) * 1_000_000))
        except Exception:  # Redis down or unreachable: postpone, never send faster
            logger.warning("rate limiter unavailable; limited delivery postponed")
            return UNAVAILABLE_WAIT.total_seconds()
        if wait_us == 0:
            return 0.0
        if wait_us < 0:
            return -wait_us / 1_000_000
        pause = wait_us / 1_000_000
        if time.monotonic() + pause > deadline:
            return pause
        time.sleep(pause)


# KEYS: per limit, its TAT key then its plan key. ARGV: max wait (µs), then
# per limit its interval (µs). Returns 0 (go), a positive wait (µs) worth
# sleeping, or minus the wait (µs) to the slot planned for this delivery.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_wait = tonumber(ARGV[1])
local n = #KEYS / 2
local tats, wait = {}, 0
for i = 1, n do
  tats[i] = math.max(tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0'), now)
  wait = math.max(wait, tats[i] - now)
end
if wait <= 0 then
  for i = 1, n do
    local interval = tonumber(ARGV[i + 1])
    local tat = tats[i] + interval
    redis.call('SET', KEYS[2 * i - 1], string.format('%.0f', tat),
      'PX', math.ceil((tat - now) / 1000) + 1000)
  end
  return 0
end
if wait <= max_wait then
  return math.ceil(wait)
end
local slot = now
for i = 1, n do
  local plan = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  slot = math.max(slot, plan, tats[i])
end
for i = 1, n do
  local interval = tonumber(ARGV[i + 1])
  redis.call('SET', KEYS[2 * i], string.format('%.0f', slot + interval),
    'PX', math.ceil((slot + interval - now) / 1000) + 1000)
end
return -math.max(1, math.ceil(slot - now))
"""


def _run(limits: Sequence[Limit], *, max_wait_us: int) -> int:
    keys = [k for limit in limits for k in (limit.key, f"{limit.key}:plan")]
    intervals = [limit.interval_us for limit in limits]
    if not settings.REDIS_URL:
        return _local.run(keys, intervals, max_wait_us)
    return int(_script()(keys=keys, args=[max_wait_us, *intervals]))


_scripts: dict[tuple[int, str], Any] = {}
_scripts_lock = threading.Lock()


def _script() -> Any:
    """The script on this process's Redis client (thread-safe, made once per
    process: a forked worker child makes its own connections)."""
    key = (os.getpid(), settings.REDIS_URL)
    script = _scripts.get(key)
    if script is None:
        with _scripts_lock:
            script = _scripts.get(key)
            if script is None:
                # Short timeouts: a sender thread must not hang on a dead Redis.
                client = redis.Redis.from_url(
                    settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1
                )
                script = _scripts[key] = client.register_script(_SCRIPT)
    return script


class _LocalLimiter:
    """The script's algorithm in one process, for deployments without Redis."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, float] = {}

    def run(self, keys: list[str], intervals: list[int], max_wait_us: int) -> int:
        with self._lock:
            now = time.time() * 1_000_000
            tats = [max(self._values.get(k, 0.0), now) for k in keys[::2]]
            wait = max(tats) - now
            if wait <= 0:
                for key, tat, interval in zip(keys[::2], tats, intervals, strict=True):
                    self._values[key] = tat + interval
                return 0
            if wait <= max_wait_us:
                return int(wait) + 1
            slot = max([now, *tats, *(self._values.get(k, 0.0) for k in keys[1::2])])
            for key, interval in zip(keys[1::2], intervals, strict=True):
                self._values[key] = slot + interval
            return -max(1, int(slot - now) + 1)


_local = _LocalLimiter()
