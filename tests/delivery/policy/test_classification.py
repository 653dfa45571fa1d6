from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from delivery.policy import classification
from delivery.policy.classification import (
    asked_wait,
    classify,
    outcome_for,
    parse_retry_after,
)
from delivery.sender.types import SendResult

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=24)
S = timedelta(seconds=1)


@pytest.fixture(autouse=True)
def _policy(settings):
    settings.WEBHOOK_RETRY_SCHEDULE = (10 * S, 30 * S, 60 * S)
    settings.WEBHOOK_RETRY_JITTER = 0.0
    settings.WEBHOOK_CONFLICT_RETRY_INTERVAL = 60 * S
    settings.WEBHOOK_RETRY_AFTER_MAX = 3600 * S


def answer(status=None, error=None, retry_after=None):
    return SendResult(status, 12, error=error, retry_after=retry_after)


# (answer, outcome, status after, retry in, backoff step after, endpoint failure)
TABLE = [
    (answer(200), "ack", "succeeded", None, 0, False),
    (answer(201), "ack", "succeeded", None, 0, False),
    (answer(204), "ack", "succeeded", None, 0, False),
    (answer(299), "ack", "succeeded", None, 0, False),
    (answer(409), "conflict_retry", "pending", 60 * S, 0, False),
    (answer(400), "permanent_failure", "failed", None, 0, False),
    (answer(429), "retry", "pending", 10 * S, 1, False),
    (answer(301), "failure", "pending", 10 * S, 1, True),
    (answer(302), "failure", "pending", 10 * S, 1, True),
    (answer(304), "failure", "pending", 10 * S, 1, True),
    (answer(401), "failure", "pending", 10 * S, 1, True),
    (answer(403), "failure", "pending", 10 * S, 1, True),
    (answer(404), "failure", "pending", 10 * S, 1, True),
    (answer(410), "failure", "pending", 10 * S, 1, True),
    (answer(413), "failure", "pending", 10 * S, 1, True),
    (answer(500), "failure", "pending", 10 * S, 1, True),
    (answer(502), "failure", "pending", 10 * S, 1, True),
    (answer(503), "failure", "pending", 10 * S, 1, True),
    (
        answer(error="timeout: no response in 10.0 s"),
        "failure",
        "pending",
        10 * S,
        1,
        True,
    ),
    (answer(error="connection refused"), "failure", "pending", 10 * S, 1, True),
    (
        answer(error="tls: certificate verify failed"),
        "failure",
        "pending",
        10 * S,
        1,
        True,
    ),
    (
        answer(error="blocked destination: loopback"),
        "failure",
        "pending",
        10 * S,
        1,
        True,
    ),
    (answer(error="oauth2 token: HTTP 500"), "failure", "pending", 10 * S, 1, True),
]


@pytest.mark.parametrize(
    ("result", "outcome", "status", "retry_in", "step", "failure"), TABLE
)
def test_each_answer_is_classified_as_the_table_says(
    result, outcome, status, retry_in, step, failure
):
    verdict = classify(result, now=NOW, expires_at=LATER, backoff_step=0)
    assert verdict.outcome == outcome
    assert verdict.status == status
    assert verdict.retry_in == retry_in
    assert verdict.backoff_step == step
    assert verdict.endpoint_failure is failure


@pytest.mark.parametrize(
    ("step", "expected_wait"), [(0, 10 * S), (1, 30 * S), (2, 60 * S), (7, 60 * S)]
)
def test_failures_walk_the_backoff_table(step, expected_wait):
    verdict = classify(answer(503), now=NOW, expires_at=LATER, backoff_step=step)
    assert verdict.retry_in == expected_wait
    assert verdict.backoff_step == step + 1


def test_a_conflict_retries_at_the_fixed_interval_without_using_a_backoff_step():
    verdict = classify(answer(409), now=NOW, expires_at=LATER, backoff_step=2)
    assert verdict.retry_in == 60 * S
    assert verdict.backoff_step == 2


@pytest.mark.parametrize(
    ("retry_after", "step", "expected_wait"),
    [
        (None, 0, 10 * S),  # no header: the table
        ("120", 0, 120 * S),  # longer than the table: honoured
        ("5", 0, 10 * S),  # shorter than the table: the table wins
        ("5", 2, 60 * S),
        (format_datetime(NOW + 300 * S, usegmt=True), 0, 300 * S),  # HTTP date
        (format_datetime(NOW - 300 * S, usegmt=True), 0, 10 * S),  # in the past
        ("86400", 0, 3600 * S),  # capped at WEBHOOK_RETRY_AFTER_MAX
        (format_datetime(NOW + 86400 * S, usegmt=True), 0, 3600 * S),
        ("soon", 0, 10 * S),  # unreadable: ignored
        ("-5", 0, 10 * S),
    ],
)
def test_429_honours_a_longer_retry_after_up_to_the_cap(
    retry_after, step, expected_wait
):
    result = answer(429, retry_after=retry_after)
    verdict = classify(result, now=NOW, expires_at=LATER, backoff_step=step)
    assert verdict.outcome == "retry"
    assert verdict.retry_in == expected_wait


def test_retry_after_is_ignored_on_a_failure():
    result = answer(503, retry_after="120")
    assert classify(result, now=NOW, expires_at=LATER).retry_in == 10 * S


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", timedelta(0)),
        ("30", 30 * S),
        (" 30 ", 30 * S),
        ("Sun, 22 Nov 2026 10:01:00 GMT", 60 * S),
        ("Sun, 22 Nov 2026 09:00:00 GMT", timedelta(0)),
        ("", None),
        (None, None),
        ("1.5", None),
        ("tomorrow", None),
    ],
)
def test_retry_after_parses_seconds_and_http_dates(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("result", "expires_in", "status"),
    [
        (answer(503), 10 * S, "pending"),  # the retry is exactly at expiry: allowed
        (answer(503), 9 * S, "expired"),
        (answer(409), 59 * S, "expired"),
        (answer(429, retry_after="120"), 100 * S, "expired"),
        (answer(200), timedelta(0), "succeeded"),  # an ack is never too late
        (answer(400), timedelta(0), "failed"),
    ],
)
def test_a_retry_that_would_fall_after_the_ttl_expires_the_delivery_now(
    result, expires_in, status
):
    verdict = classify(result, now=NOW, expires_at=NOW + expires_in)
    assert verdict.status == status
    if status == "expired":
        assert verdict.retry_in is None


@pytest.mark.parametrize(
    ("result", "outcome", "status"),
    [
        (answer(200), "ack", "succeeded"),
        (answer(400), "permanent_failure", "failed"),
        (answer(409), "failure", "failed"),
        (answer(429), "failure", "failed"),
        (answer(503), "failure", "failed"),
        (answer(error="connection refused"), "failure", "failed"),
    ],
)
def test_a_test_delivery_is_never_retried_and_never_counts(result, outcome, status):
    verdict = classify(result, now=NOW, expires_at=LATER, kind="test")
    assert (verdict.outcome, verdict.status) == (outcome, status)
    assert verdict.retry_in is None
    assert verdict.endpoint_failure is False


def test_the_rules_cover_every_outcome_a_response_can_have():
    reachable = {outcome_for(code) for code in [None, *range(100, 600)]}
    assert reachable == set(classification.RULES)


@pytest.mark.parametrize(
    ("result", "up"),
    [
        (SendResult(200, 1), True),
        (SendResult(302, 1), True),
        (SendResult(404, 1), True),  # one path, one tenant's webhook
        (SendResult(429, 1), True),
        (SendResult(500, 1), False),
        (SendResult(503, 1), False),
        (
            SendResult(None, 1, error="connection refused", transport_failure=True),
            False,
        ),
        (
            SendResult(None, 1, error="timeout: no response", transport_failure=True),
            False,
        ),
        (SendResult(None, 1, error="invalid request: cannot encode"), None),
        (SendResult(None, 1, error="blocked destination: 10.0.0.1"), None),
        (SendResult(None, 1, error="dns: the host does not resolve"), None),
        (SendResult(None, 1, error="cannot build the request"), None),
    ],
)
def test_the_breaker_reads_answers_as_the_destinations_health(result, up):
    assert classification.destination_health(result) is up


@pytest.mark.parametrize(
    ("status", "retry_after", "wait"),
    [
        (429, "5", timedelta(seconds=5)),
        (503, "Sun, 22 Nov 2026 10:01:00 GMT", timedelta(minutes=1)),
        (503, "0", None),
        (429, None, None),
        (429, "soon", None),
        (500, "5", None),
        (200, "5", None),
    ],
)
def test_asked_wait_is_a_429_or_503_retry_after(status, retry_after, wait):
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    result = SendResult(status, 1, retry_after=retry_after)
    assert asked_wait(result, now=now) == wait
