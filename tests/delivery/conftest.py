"""The delivery tests' policy (a fixed retry table, no jitter, thresholds out
of the way) and a stand-in for the broker's wake-ups."""

from datetime import timedelta
from typing import Any

import pytest

from delivery.pipeline import wakeups


@pytest.fixture(autouse=True)
def _deterministic_policy(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (timedelta(seconds=10), timedelta(seconds=30))
    settings.WEBHOOK_RETRY_JITTER = 0.0
    settings.WEBHOOK_DELIVERY_TTL = timedelta(hours=24)
    settings.WEBHOOK_PAUSE_AFTER_FAILURES = 10
    settings.WEBHOOK_BREAKER_THRESHOLD = 1000
    settings.WEBHOOK_TIMEOUT = timedelta(seconds=2)
    settings.WEBHOOK_CONNECT_TIMEOUT = timedelta(seconds=1)


@pytest.fixture
def kicked(monkeypatch) -> list[dict[str, Any]]:
    """Wake-ups the code under test sends (instead of reaching the broker)."""
    calls: list[dict[str, Any]] = []

    def fake(*, count: int = 0, countdowns=()) -> int:
        calls.append({"count": count, "countdowns": list(countdowns)})
        return count + len(calls[-1]["countdowns"])

    monkeypatch.setattr(wakeups, "send_wakeups", fake)
    return calls
