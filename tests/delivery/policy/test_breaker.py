import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from delivery.models import Breaker
from delivery.policy import breaker
from delivery.policy.breaker import BreakerState, Tally

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
COOL = timedelta(seconds=30)
OPEN = NOW + COOL


@pytest.fixture(autouse=True)
def _breaker_settings(settings):
    settings.WEBHOOK_BREAKER_THRESHOLD = 3
    settings.WEBHOOK_BREAKER_COOLDOWN = COOL


@pytest.mark.parametrize(
    ("url", "destination"),
    [
        ("https://Example.com/hooks?a=1", "https://example.com:443"),
        ("http://example.com/hooks", "http://example.com:80"),
        ("http://127.0.0.1:9000/a", "http://127.0.0.1:9000"),
        ("http://127.0.0.1:9000/b", "http://127.0.0.1:9000"),
        ("https://[::1]:8443/x", "https://[::1]:8443"),
        ("http://user:pw@host:81/", "http://host:81"),
    ],
)
def test_a_destination_is_scheme_host_and_port(url, destination):
    assert breaker.destination_of(url) == destination


@pytest.mark.parametrize(
    ("outcomes", "tally"),
    [
        ([], Tally(False, 0)),
        (["failure", "failure"], Tally(False, 2)),
        (["failure", "ack"], Tally(True, 0)),
        (["ack", "failure", "failure"], Tally(True, 2)),
        (["retry", "conflict_retry", "permanent_failure"], Tally(False, 0)),
        (["failure", "retry", "failure"], Tally(False, 2)),
    ],
)
def test_a_tally_counts_failures_after_the_last_ack(outcomes, tally):
    assert Tally.of(outcomes) == tally


# (state before, what a flush saw, state after)
TRANSITIONS = [
    # closed, failures below the threshold: still closed
    (BreakerState(0, None), Tally(False, 2), BreakerState(2, None)),
    # reaching the threshold opens it for the cooldown
    (BreakerState(2, None), Tally(False, 1), BreakerState(3, OPEN)),
    (BreakerState(0, None), Tally(False, 5), BreakerState(5, OPEN)),
    # an ack closes it and forgets the failures
    (BreakerState(2, None), Tally(True, 0), BreakerState(0, None)),
    # the half-open probe: an ack closes ...
    (BreakerState(3, NOW - COOL), Tally(True, 0), BreakerState(0, None)),
    # ... a failure opens it again
    (BreakerState(3, NOW - COOL), Tally(False, 1), BreakerState(4, OPEN)),
    # failures after an ack in the same flush count from zero
    (BreakerState(2, None), Tally(True, 2), BreakerState(2, None)),
    (BreakerState(2, None), Tally(True, 3), BreakerState(3, OPEN)),
    # neutral outcomes (409, 429, 400) change nothing
    (BreakerState(2, None), Tally(False, 0), BreakerState(2, None)),
    (BreakerState(3, OPEN), Tally(False, 0), BreakerState(3, OPEN)),
]


@pytest.mark.parametrize(("before", "tally", "after"), TRANSITIONS)
def test_breaker_transitions(before, tally, after):
    assert breaker.apply(before, tally, now=NOW) == after


@pytest.mark.parametrize(
    ("state", "is_open", "wants_probe"),
    [
        (BreakerState(0, None), False, False),
        (BreakerState(3, NOW + timedelta(seconds=1)), True, False),
        (BreakerState(3, NOW), False, True),
        (BreakerState(3, NOW - timedelta(seconds=1)), False, True),
    ],
)
def test_open_and_half_open(state, is_open, wants_probe):
    assert state.is_open(NOW) is is_open
    assert state.wants_probe(NOW) is wants_probe


@pytest.mark.django_db
@pytest.mark.parametrize(("before", "tally", "after"), TRANSITIONS)
def test_recording_in_the_database_makes_the_same_transitions(before, tally, after):
    dest = "http://example.com:80"
    if before != breaker.CLOSED:
        Breaker.objects.create(
            destination=dest,
            consecutive_failures=before.consecutive_failures,
            open_until=before.open_until,
        )
    breaker.record_outcomes({dest: tally}, known={dest: before}, now=NOW)
    assert breaker.load_states([dest])[dest] == after


@pytest.mark.django_db
def test_a_healthy_destination_with_only_acks_is_not_written():
    breaker.record_outcomes({"http://fine:80": Tally(True, 0)}, known={}, now=NOW)
    assert not Breaker.objects.exists()


@pytest.mark.django_db
def test_concurrent_flushes_add_up_their_failures():
    dest = "http://down:80"
    for _ in range(2):  # two workers, each knowing only the state it read
        breaker.record_outcomes({dest: Tally(False, 2)}, known={}, now=NOW)
    assert breaker.load_states([dest])[dest] == BreakerState(4, OPEN)


@pytest.mark.django_db
def test_an_unknown_destination_is_closed():
    assert breaker.load_states(["http://new:80"]) == {"http://new:80": breaker.CLOSED}


@pytest.mark.django_db(transaction=True)
def test_only_one_worker_wins_the_probe_of_a_half_open_breaker(settings):
    dest = "http://flaky:80"
    Breaker.objects.create(destination=dest, consecutive_failures=3, open_until=NOW)
    wins: list[datetime | None] = []
    barrier = threading.Barrier(6)

    def contend() -> None:
        try:
            barrier.wait(timeout=5)
            wins.append(breaker.claim_probe(dest, now=NOW + timedelta(seconds=1)))
        finally:
            connection.close()

    threads = [threading.Thread(target=contend) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    winners = [won for won in wins if won is not None]
    assert len(wins) == 6
    assert winners == [NOW + timedelta(seconds=1) + COOL]
    # and while it probes, the breaker reads as open to everyone else
    state = breaker.load_states([dest])[dest]
    assert state.is_open(NOW + timedelta(seconds=2))
