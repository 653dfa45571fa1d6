from datetime import timedelta

import pytest

from delivery.policy import backoff
from webhooks_project import settings as startup

S = timedelta(seconds=1)
M = timedelta(minutes=1)
H = timedelta(hours=1)
DEFAULT = (10 * S, 30 * S, M, 5 * M, 10 * M, 30 * M, H, 3 * H, 6 * H, 12 * H)


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 10 * S),
        (1, 30 * S),
        (2, M),
        (3, 5 * M),
        (4, 10 * M),
        (5, 30 * M),
        (6, H),
        (7, 3 * H),
        (8, 6 * H),
        (9, 12 * H),
        (10, 12 * H),
        (57, 12 * H),
    ],
)
def test_the_default_table_is_the_specs_and_its_last_entry_repeats(step, expected):
    assert backoff.base_delay(step, schedule=DEFAULT) == expected


def test_the_table_comes_from_settings(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (timedelta(milliseconds=100), 2 * S)
    assert [backoff.base_delay(step) for step in range(4)] == [
        timedelta(milliseconds=100),
        2 * S,
        2 * S,
        2 * S,
    ]


def test_the_settings_default_is_the_specs_table():
    # The module as read at start-up: this suite's autouse fixture overrides
    # django.conf.settings with a short table.
    assert startup.WEBHOOK_RETRY_SCHEDULE == DEFAULT


@pytest.mark.parametrize(
    ("jitter", "draw", "expected"),
    [
        (0.1, -0.1, 9 * S),  # the lowest the jitter can go
        (0.1, 0.1, 11 * S),  # the highest
        (0.1, 0.0, 10 * S),
        (0.25, -0.25, 7.5 * S),
        (0.0, 0.0, 10 * S),
    ],
)
def test_jitter_scales_the_delay_by_the_drawn_factor(jitter, draw, expected):
    def uniform(low, high):
        assert (low, high) == (-jitter, jitter)
        return draw

    delay = backoff.retry_delay(0, schedule=DEFAULT, jitter=jitter, uniform=uniform)
    assert delay == expected


@pytest.mark.parametrize("step", [0, 3, 9, 12])
def test_jittered_delays_stay_within_the_bounds(step, settings):
    settings.WEBHOOK_RETRY_JITTER = 0.1
    base = backoff.base_delay(step, schedule=DEFAULT)
    delays = [backoff.retry_delay(step, schedule=DEFAULT) for _ in range(500)]
    assert all(base * 0.9 <= delay <= base * 1.1 for delay in delays)
    # and they really are spread, not all the same
    assert max(delays) - min(delays) > base * 0.1


def test_without_jitter_the_delay_is_exact(settings):
    settings.WEBHOOK_RETRY_JITTER = 0.0
    assert {backoff.retry_delay(1, schedule=DEFAULT) for _ in range(20)} == {30 * S}
